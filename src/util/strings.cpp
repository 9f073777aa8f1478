#include "det/util/strings.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace det::util {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  // Accept up to a third of the word's length in edits (at least 2): catches typos, not guesses.
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  std::string best;
  size_t best_d = std::string::npos;
  for (const auto& c : candidates) {
    // The distance is at least the difference in length: skip hopeless candidates without the
    // quadratic comparison (a 1 MB word from a hostile config costs nothing).
    if (word.size() > c.size() + limit || c.size() > word.size() + limit) continue;
    size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best_d <= limit ? best : "";
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  std::string m = closest_match(word, candidates);
  return m.empty() ? "" : ", did you mean '" + m + "'?";
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

std::string utc_now_iso8601() {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string format_duration(double seconds) {
  char buf[64];
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", seconds);
  } else if (seconds < 3600) {
    int s = static_cast<int>(seconds);
    std::snprintf(buf, sizeof buf, "%dm%02ds", s / 60, s % 60);
  } else {
    int m = static_cast<int>(seconds / 60);
    std::snprintf(buf, sizeof buf, "%dh%02dm", m / 60, m % 60);
  }
  return buf;
}

namespace {

// Escapes `text` and stops after `max_chars` characters; `cut` tells whether it stopped early.
std::string escape_prefix(const std::string& text, size_t max_chars, bool& cut) {
  std::string out;
  size_t chars = 0, i = 0;
  for (; i < text.size() && chars < max_chars; ++chars) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else if (c >= 0x80) {
      // One UTF-8 character: the lead byte and its continuation bytes, never half of it.
      size_t end = i + 1;
      while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80 &&
             end - i < 4)
        ++end;
      out.append(text, i, end - i);
      i = end;
      continue;
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  cut = i < text.size();
  return out;
}

}  // namespace

std::string one_line(const std::string& text) {
  bool clean = true;
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) clean = false;
  }
  if (clean) return text;  // the common case: no copy through escape_prefix
  bool cut = false;
  return escape_prefix(text, text.size(), cut);
}

std::string shorten(const std::string& text, size_t max_chars) {
  bool cut = false;
  std::string out = escape_prefix(text, max_chars, cut);
  if (cut) out += "... (" + std::to_string(text.size()) + " bytes)";
  return out;
}

std::string quote(const std::string& text, size_t max_chars) {
  bool cut = false;
  std::string out = "'" + escape_prefix(text, max_chars, cut);
  return cut ? out + "...' (" + std::to_string(text.size()) + " bytes)" : out + "'";
}

}  // namespace det::util
