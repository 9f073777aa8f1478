#include "det/dist/distributed_context.h"

namespace det::dist {

std::shared_ptr<DistributedContext> make_local_context() { return std::make_shared<DistributedContext>(); }

}  // namespace det::dist
