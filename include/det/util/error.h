#pragma once
/// \file
/// Exception types. Every user-facing failure is one of these; the CLI prints `what()` as
/// one line and exits non-zero. A message says what went wrong, where, and how to fix it.

#include <stdexcept>
#include <string>

namespace det {

namespace util {
/// `text` with its control characters escaped (`\n`, `\t`, `\r`, `\xNN`, NUL as `\x00`), so that
/// it prints as one line and a terminal never sees an escape sequence from it. Never cut.
std::string one_line(const std::string& text);
}  // namespace util

/// Base of all det errors.
class Error : public std::runtime_error {
 public:
  /// `message` is what(): one line saying what went wrong, where, and how to fix it. Whatever
  /// user text it carries (a file name with a newline, a key with a NUL, an ESC) is escaped here
  /// (util::one_line), once for every error, so no message is cut or carries raw control bytes.
  explicit Error(const std::string& message) : std::runtime_error(util::one_line(message)) {}
};

/// A mistake in an experiment config (file:line:column, key path, expected, found).
class ConfigError : public Error {
 public:
  /// Takes the one-line message; the CLI exits 2 on a ConfigError.
  using Error::Error;
};

/// A missing, truncated or malformed data file.
class DataError : public Error {
 public:
  /// Takes the one-line message, which names the file and what is wrong with it.
  using Error::Error;
};

/// A missing, truncated, corrupt or mismatched checkpoint.
class CheckpointError : public Error {
 public:
  /// Takes the one-line message, which names the checkpoint (or file) and the fault.
  using Error::Error;
};

/// Thrown by a trial that rejects its hyperparameters; the searcher replaces the trial.
class InvalidHP : public Error {
 public:
  /// Takes the one-line message: why the hyperparameters are rejected.
  using Error::Error;
};

/// A failure of a distributed collective, a rank or the rendezvous.
class DistributedError : public Error {
 public:
  /// Takes the one-line message, which names the rank or collective that failed.
  using Error::Error;
};

/// The disk under the run directory or checkpoints is full or read-only (ENOSPC, EDQUOT,
/// EROFS). Nothing is lost: the experiment stops, and continues with --resume-experiment once
/// there is room again.
class StorageError : public Error {
 public:
  /// Takes the one-line message, which names the path and the errno's meaning.
  using Error::Error;
};

/// Whether an errno means the storage is full or read-only (StorageError).
inline bool is_storage_errno(int e) {
  return e == 28 /*ENOSPC*/ || e == 122 /*EDQUOT*/ || e == 30 /*EROFS*/;
}

/// A NaN or infinite training or validation metric, with optimizations.fail_on_non_finite: the
/// trial fails and is not restarted (it would diverge again).
class NonFiniteMetric : public Error {
 public:
  /// Takes the one-line message, which names the metric and the batch.
  using Error::Error;
};

/// Wrong command-line usage.
class UsageError : public Error {
 public:
  /// Takes the one-line message; the CLI exits 2 on a UsageError.
  using Error::Error;
};

}  // namespace det
