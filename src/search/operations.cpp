#include "det/search/operations.h"

namespace det::search {

std::string to_string(const Operation& op) {
  if (auto* c = std::get_if<Create>(&op))
    return "Create(" + c->request_id + ", " + c->hparams.dump() + ")";
  if (auto* v = std::get_if<ValidateAfter>(&op))
    return "ValidateAfter(" + v->request_id + ", " + std::to_string(v->length) + ")";
  if (auto* c = std::get_if<Close>(&op)) return "Close(" + c->request_id + ")";
  const auto& s = std::get<Shutdown>(op);
  return std::string("Shutdown(cancel=") + (s.cancel ? "true" : "false") +
         ", failure=" + (s.failure ? "true" : "false") + ")";
}

Create make_create_with(nlohmann::json hparams, util::NpRandom& rng) {
  // An empty space samples nothing, so this draws exactly the id and seed, as NewCreate does.
  Create c = make_create(config::HyperparameterSpace{}, rng);
  c.hparams = std::move(hparams);
  return c;
}

}  // namespace det::search
