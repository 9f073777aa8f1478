#pragma once
/// \file
/// The searcher metric's order: the one definition of "better" that the loop (checkpoint
/// policy "best"), checkpoint retention, the recorder (best validation, best trial) and the
/// runner (what the searcher sees) share.

#include <optional>

namespace det::config {

/// Whether `candidate` is a better value of the searcher metric than `incumbent` (no incumbent:
/// always). NaN is the worst value: it is never better, and any number beats it.
bool is_better(double candidate, std::optional<double> incumbent, bool smaller_is_better);

/// The worst value of a metric: +inf when smaller is better, else -inf. What the searcher is
/// told in place of NaN.
double worst_value(bool smaller_is_better);

}  // namespace det::config
