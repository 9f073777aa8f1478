#include "det/record/rank_failure.h"

#include <limits>

#include "det/util/error.h"
#include "fields.h"

namespace det::record {

nlohmann::json RankFailure::to_json() const {
  return {
      {"v", kVersion}, {"message", message}, {"peer_failure", peer_failure}, {"unix_ns", unix_ns}};
}

RankFailure RankFailure::from_json(const nlohmann::json& j, const std::string& where) {
  detail::Fields<Error> f(j, where);
  if (f.value<int64_t>("v", kVersion) > kVersion)
    throw Error(where + ": version " + std::to_string(f.get<int64_t>("v")) +
                " is newer than this det reads (" + std::to_string(kVersion) +
                "): use the det that wrote it");
  RankFailure r;
  r.message = f.get<std::string>("message");
  r.peer_failure = f.get<bool>("peer_failure");
  r.unix_ns = f.get_int("unix_ns", 0, std::numeric_limits<int64_t>::max());
  return r;
}

}  // namespace det::record
