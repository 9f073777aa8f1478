#include "safetensors_format.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include <nlohmann/json.hpp>

#include "det/util/error.h"

namespace det::nn {

namespace {

struct DtypeSize {
  const char* name;
  size_t size;
};
const DtypeSize kDtypeSizes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                                 {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};

std::string byte_hex(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", c);
  return buf;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

// A non-negative JSON integer as uint64, else false.
bool to_u64(const nlohmann::json& v, uint64_t& out) {
  if (v.is_number_unsigned()) {
    out = v.get<uint64_t>();
    return true;
  }
  if (v.is_number_integer() && v.get<int64_t>() >= 0) {
    out = static_cast<uint64_t>(v.get<int64_t>());
    return true;
  }
  return false;
}

// A SAX handler that only notes the first name given twice at the top level, or a parse error.
struct DuplicateKeys {
  using json = nlohmann::json;
  int depth = 0;
  std::set<std::string> seen;
  std::string duplicate, error;
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t&) { return true; }
  bool string(json::string_t&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) { return ++depth, true; }
  bool end_object() { return --depth, true; }
  bool start_array(std::size_t) { return ++depth, true; }
  bool end_array() { return --depth, true; }
  bool key(json::string_t& k) {
    if (depth != 1 || seen.insert(k).second) return true;
    duplicate = k;
    error = "duplicate";
    return false;  // stops the parse
  }
  bool parse_error(std::size_t, const std::string&, const json::exception& e) {
    error = e.what();
    return false;
  }
};

}  // namespace

std::string quote_for_error(std::string_view text) {
  constexpr size_t kMax = 60;
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    out += (c >= 0x20 && c < 0x7f) ? std::string(1, static_cast<char>(c))
                                   : "\\x" + byte_hex(c).substr(2);
  }
  return out + (text.size() > kMax ? "...'" : "'");
}

size_t safetensors_element_size(std::string_view dtype) {
  for (const auto& d : kDtypeSizes)
    if (dtype == d.name) return d.size;
  return 0;
}

uint64_t safetensors_header_length(const unsigned char prefix[8], uint64_t file_bytes,
                                   const std::string& where) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];
  if (file_bytes < 8 || n > file_bytes - 8)
    throw DataError(where + ": truncated or not a safetensors file: the header announces " +
                    std::to_string(n) + " bytes but only " +
                    std::to_string(file_bytes < 8 ? 0 : file_bytes - 8) + " follow");
  if (n > kMaxSafetensorsHeaderBytes)
    throw DataError(where +
                    ": not a safetensors file or corrupt: the header length prefix announces " +
                    std::to_string(n) + " bytes, more than the " +
                    std::to_string(kMaxSafetensorsHeaderBytes) + " the format allows");
  if (n < 2)
    throw DataError(where + ": not a safetensors file: a header of " + std::to_string(n) +
                    " bytes cannot hold a JSON object");
  return n;
}

namespace {

const char* const kCorrupt = "; the file is corrupt or not safetensors";

// The header's JSON object: '{' first, only spaces after its '}', no name twice.
nlohmann::json header_object(std::string_view header, const std::string& where) {
  if (header.empty() || header[0] != '{')
    throw DataError(
        where + ": the safetensors header does not start with '{' (it starts with byte " +
        byte_hex(header.empty() ? 0 : static_cast<unsigned char>(header[0])) + ")" + kCorrupt);
  // The format pads the header with spaces (0x20) only, to align the data.
  size_t end = header.size();
  while (end > 0 && header[end - 1] == ' ') --end;
  if (header[end - 1] != '}')
    throw DataError(where + ": the safetensors header ends with byte " +
                    byte_hex(static_cast<unsigned char>(header[end - 1])) +
                    " after its JSON; only spaces (0x20) may pad it" + kCorrupt);
  // A name given twice would be two tensors with one name: refused, not silently the last. A
  // first SAX pass finds it (nlohmann's parse with a callback is quadratic in the number of
  // entries: after each entry it walks the whole object for discarded values), then the header
  // is parsed plainly; both are linear.
  const auto first = header.begin(), last = header.begin() + static_cast<std::ptrdiff_t>(end);
  DuplicateKeys dups;
  nlohmann::json j;
  try {
    nlohmann::json::sax_parse(first, last, &dups);
    if (dups.error.empty()) j = nlohmann::json::parse(first, last);
  } catch (const nlohmann::json::exception& e) {
    throw DataError(where + ": the safetensors header is not valid JSON (" +
                    quote_for_error(e.what()) + ")" + kCorrupt);
  }
  if (!dups.error.empty())
    throw DataError(where + ": " +
                    (dups.duplicate.empty() ? "the safetensors header is not valid JSON (" +
                                                  quote_for_error(dups.error) + ")"
                                            : "tensor " + quote_for_error(dups.duplicate) +
                                                  " appears twice in the safetensors header") +
                    kCorrupt);
  if (!j.is_object())
    throw DataError(where + ": the safetensors header is not a JSON object" + kCorrupt);
  return j;
}

void read_metadata(const nlohmann::json& info, const std::string& where,
                   std::map<std::string, std::string>& metadata) {
  if (!info.is_object())
    throw DataError(where + ": __metadata__ must be an object of strings" + kCorrupt);
  for (const auto& [k, v] : info.items()) {
    if (!v.is_string())
      throw DataError(where + ": __metadata__." + quote_for_error(k) + " is not a string" +
                      kCorrupt);
    metadata[k] = v.get<std::string>();
  }
}

// The entry's shape into e.shape; returns its byte size. `what` names the tensor.
int64_t read_shape(const nlohmann::json& shape, SafetensorsEntry& e, const std::string& what) {
  int64_t numel = 1;
  bool overflow = false;
  for (const auto& d : shape) {
    uint64_t v = 0;
    if (!to_u64(d, v))
      throw DataError(what + ": shape holds " + quote_for_error(d.dump()) +
                      ", not a non-negative integer" + kCorrupt);
    if (v > static_cast<uint64_t>(INT64_MAX) ||
        __builtin_mul_overflow(numel, static_cast<int64_t>(v), &numel))
      overflow = true;
    e.shape.push_back(v > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v));
  }
  int64_t bytes = 0;
  if (overflow || __builtin_mul_overflow(numel, static_cast<int64_t>(e.element_size), &bytes))
    throw DataError(what + ": shape " + shape_str(e.shape) + " of " + e.dtype +
                    " has a byte size that overflows a 64-bit integer" + kCorrupt);
  return bytes;
}

SafetensorsEntry read_entry(const std::string& name, const nlohmann::json& info,
                            const std::string& where, uint64_t data_bytes) {
  const std::string what = where + ": tensor " + quote_for_error(name);
  const std::string malformed =
      what + ": malformed header entry; expected {\"dtype\": ..., \"shape\": [...], " +
      "\"data_offsets\": [begin, end]}" + kCorrupt;
  if (!info.is_object()) throw DataError(malformed);
  auto dt = info.find("dtype"), sh = info.find("shape"), off = info.find("data_offsets");
  if (dt == info.end() || sh == info.end() || off == info.end() || !dt->is_string() ||
      !sh->is_array() || !off->is_array())
    throw DataError(malformed);
  SafetensorsEntry e;
  e.name = name;
  e.dtype = dt->get<std::string>();
  e.element_size = safetensors_element_size(e.dtype);
  if (e.element_size == 0)
    throw DataError(what + ": unsupported dtype " + quote_for_error(e.dtype) +
                    " (det reads F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
  const int64_t bytes = read_shape(*sh, e, what);
  if (off->size() != 2 || !to_u64((*off)[0], e.begin) || !to_u64((*off)[1], e.end) ||
      e.begin > e.end)
    throw DataError(what + ": data_offsets must be [begin, end] with 0 <= begin <= end" + kCorrupt);
  if (e.end - e.begin != static_cast<uint64_t>(bytes))
    throw DataError(what + ": shape " + shape_str(e.shape) + " of " + e.dtype + " needs " +
                    std::to_string(bytes) + " bytes, data_offsets give " +
                    std::to_string(e.end - e.begin) + kCorrupt);
  if (e.end > data_bytes)
    throw DataError(what + ": data_offsets [" + std::to_string(e.begin) + ", " +
                    std::to_string(e.end) + "] reach outside the " + std::to_string(data_bytes) +
                    " data bytes; the file is truncated or corrupt");
  return e;
}

// The tensors must tile the data area exactly, as the reference implementation checks.
void check_tiling(const SafetensorsIndex& index, const std::string& where) {
  std::vector<const SafetensorsEntry*> by_offset;
  for (const auto& e : index.tensors) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const SafetensorsEntry* a, const SafetensorsEntry* b) {
              return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
            });
  uint64_t cursor = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const auto* e : by_offset) {
    if (e->begin < cursor)
      throw DataError(where + ": the data of tensors " + quote_for_error(previous->name) + " and " +
                      quote_for_error(e->name) + " overlap" + kCorrupt);
    if (e->begin > cursor)
      throw DataError(where + ": " + std::to_string(e->begin - cursor) +
                      " bytes of the data area before tensor " + quote_for_error(e->name) +
                      " belong to no tensor" + kCorrupt);
    cursor = e->end;
    previous = e;
  }
  if (cursor != index.data_bytes)
    throw DataError(where + ": " + std::to_string(index.data_bytes - cursor) +
                    " bytes after the last tensor's data belong to no tensor (trailing junk)" +
                    kCorrupt);
}

}  // namespace

SafetensorsIndex parse_safetensors_header(std::string_view header, uint64_t file_bytes,
                                          const std::string& where) {
  SafetensorsIndex out;
  out.header_bytes = header.size();
  if (file_bytes < 8 + header.size())
    throw DataError(where + ": truncated: the file is shorter than its header");
  out.data_bytes = file_bytes - 8 - header.size();
  const nlohmann::json j = header_object(header, where);
  for (const auto& [name, info] : j.items()) {
    if (name == "__metadata__")
      read_metadata(info, where, out.metadata);
    else
      out.tensors.push_back(read_entry(name, info, where, out.data_bytes));
  }
  check_tiling(out, where);
  return out;
}

}  // namespace det::nn
