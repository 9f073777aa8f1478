#pragma once
// Internal to the core layer.

namespace det::detail {

/// Thrown by Trial's default evaluate_* methods so the controller can tell which one a trial
/// overrides.
struct NotOverridden {};

}  // namespace det::detail
