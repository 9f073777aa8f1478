#pragma once
/// \file
/// Small string helpers shared by the config parser and the CLI.

#include <string>
#include <vector>

namespace det::util {

/// Levenshtein edit distance between two strings.
size_t edit_distance(const std::string& a, const std::string& b);

/// The candidate closest to `word` if it is close enough to be a likely typo, else "".
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

/// `", did you mean 'x'?"` when a close candidate exists, else "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

/// Joins with a separator.
std::string join(const std::vector<std::string>& parts, const std::string& sep);

/// Splits on a single character, keeping empty pieces.
std::vector<std::string> split(const std::string& s, char sep);

/// The current UTC time as ISO 8601 ("2026-11-21T21:12:33Z").
std::string utc_now_iso8601();

/// A duration in seconds as "1h02m", "3m05s" or "12.3s".
std::string format_duration(double seconds);

/// User text made fit for a one-line message: control characters escaped (`\n`, `\t`, `\xNN`)
/// and, past `max_chars` characters, cut at a UTF-8 character boundary and ended with
/// `... (N bytes)`. E.g. shorten(1 MB of 'a', 5) == "aaaaa... (1048576 bytes)".
std::string shorten(const std::string& text, size_t max_chars = 60);

/// `shorten(text)` in single quotes, the cut noted after the quote: `'abc'`,
/// `'aaaaa...' (1048576 bytes)`. Use it wherever an error message echoes user text.
std::string quote(const std::string& text, size_t max_chars = 60);

}  // namespace det::util
