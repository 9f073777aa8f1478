#include "det/record/tensorboard.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "det/util/error.h"
#include "det/util/fs.h"

namespace det::record::tensorboard {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Reflected Castagnoli polynomial; one table, built once.
const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_le(std::string_view in, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v |= static_cast<uint64_t>(static_cast<uint8_t>(in[at + i])) << (8 * i);
  return v;
}

// The protocol buffer wire format, for the fields det writes.
class Message {
 public:
  Message& varint(int field, uint64_t v, bool always = false) {
    if (v == 0 && !always) return *this;
    key(field, 0);
    raw_varint(v);
    return *this;
  }
  // Proto3 leaves out a scalar at its default (all bits zero) unless it is a oneof member
  // (`always`); so does det, so that its bytes are protoc's.
  Message& fixed64(int field, double v, bool always = false) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    if (bits == 0 && !always) return *this;
    key(field, 1);
    put_le(out_, bits, 8);
    return *this;
  }
  Message& fixed32(int field, float v) {
    key(field, 5);
    uint32_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    put_le(out_, bits, 4);
    return *this;
  }
  Message& bytes(int field, std::string_view b) {
    key(field, 2);
    raw_varint(b.size());
    out_.append(b);
    return *this;
  }
  Message& message(int field, const Message& m) { return bytes(field, m.out_); }
  const std::string& str() const { return out_; }

 private:
  void key(int field, int wire) { raw_varint((static_cast<uint64_t>(field) << 3) | wire); }
  void raw_varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  std::string out_;
};

Message event_header(double wall_time, int64_t step) {
  Message m;
  m.fixed64(1, wall_time).varint(2, static_cast<uint64_t>(step));
  return m;
}

// google.protobuf.Value of a JSON scalar (struct.proto: null 1, number 2, string 3, bool 4).
Message proto_value(const json& v) {
  Message m;
  // Value's kinds are a oneof: written even at their defaults.
  if (v.is_number())
    m.fixed64(2, v.get<double>(), true);
  else if (v.is_boolean())
    m.varint(4, v.get<bool>() ? 1 : 0, true);
  else if (v.is_string())
    m.bytes(3, v.get<std::string>());
  else if (v.is_null())
    m.varint(1, 0, true);
  else
    m.bytes(3, v.dump());
  return m;
}

std::string plugin_data(int field, const Message& payload) {
  // HParamsPluginData{version 0 (omitted), oneof data}.
  Message m;
  m.message(field, payload);
  return m.str();
}

}  // namespace

uint32_t crc32c(std::string_view data, uint32_t crc) {
  const auto& t = crc_table();
  crc = ~crc;
  for (unsigned char c : data) crc = t[(crc ^ c) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(std::string_view data) {
  const uint32_t crc = crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

std::string frame_record(std::string_view data) {
  std::string out, len;
  put_le(len, data.size(), 8);
  out.reserve(data.size() + 16);
  out += len;
  put_le(out, masked_crc32c(len), 4);
  out.append(data);
  put_le(out, masked_crc32c(data), 4);
  return out;
}

std::vector<std::string> read_records(std::string_view file, const std::string& where) {
  std::vector<std::string> records;
  size_t at = 0;
  while (at < file.size()) {
    if (file.size() - at < 12) break;  // a torn header
    const uint64_t len = get_le(file, at, 8);
    if (static_cast<uint32_t>(get_le(file, at + 8, 4)) != masked_crc32c(file.substr(at, 8)))
      throw Error(where + ": record at byte " + std::to_string(at) +
                  ": the length's CRC does not match; the file is damaged");
    if (len > file.size() - at - 12 || file.size() - at - 12 - len < 4) break;  // a torn record
    std::string_view data = file.substr(at + 12, len);
    if (static_cast<uint32_t>(get_le(file, at + 12 + len, 4)) != masked_crc32c(data))
      throw Error(where + ": record at byte " + std::to_string(at) +
                  ": the data's CRC does not match; the file is damaged");
    records.emplace_back(data);
    at += 16 + len;
  }
  return records;
}

namespace event {

std::string file_version(double wall_time) {
  Message m = event_header(wall_time, 0);
  m.bytes(3, "brain.Event:2");
  // Event.source_metadata{writer}: who wrote the file.
  m.message(10, Message().bytes(1, "det"));
  return m.str();
}

std::string scalar(double wall_time, int64_t step, const std::string& tag, double value) {
  Message v;  // simple_value is a oneof member: written even when 0
  v.bytes(1, tag).fixed32(2, static_cast<float>(value));
  Message summary;
  summary.message(1, v);
  Message m = event_header(wall_time, step);
  m.message(5, summary);
  return m.str();
}

std::string session_log(double wall_time, int64_t step, SessionStatus status) {
  Message m = event_header(wall_time, step);
  m.message(7, Message().varint(1, static_cast<uint64_t>(status)));
  return m.str();
}

std::string plugin_summary(double wall_time, int64_t step, const std::string& tag,
                           const std::string& plugin, const std::string& content) {
  // SummaryMetadata{plugin_data{plugin_name, content}}; TensorProto{dtype DT_FLOAT, shape {},
  // float_val [0]}.
  Message metadata;
  metadata.message(1, Message().bytes(1, plugin).bytes(2, content));
  Message tensor;
  tensor.varint(1, 1).message(2, Message()).bytes(5, std::string(4, '\0'));
  Message v;
  v.bytes(1, tag).message(8, tensor).message(9, metadata);
  Message summary;
  summary.message(1, v);
  Message m = event_header(wall_time, step);
  m.message(5, summary);
  return m.str();
}

}  // namespace event

namespace hparams {

std::string experiment(const std::string& name, const std::string& description, double time_created,
                       const std::vector<HParamInfo>& infos,
                       const std::vector<MetricInfo>& metrics) {
  Message e;
  if (!description.empty()) e.bytes(1, description);
  e.fixed64(3, time_created);
  for (const auto& h : infos) {
    Message i;
    i.bytes(1, h.name).varint(4, static_cast<uint64_t>(h.type));
    if (!h.discrete.empty()) {
      Message list;  // google.protobuf.ListValue{repeated Value values = 1}
      for (const auto& v : h.discrete) list.message(1, proto_value(v));
      i.message(5, list);
    } else if (h.interval) {
      i.message(6, Message().fixed64(1, h.interval->first).fixed64(2, h.interval->second));
    }
    e.message(4, i);
  }
  for (const auto& mi : metrics) {
    Message i;
    i.message(1, Message().bytes(2, mi.tag));  // MetricName{group "" (the session's run), tag}
    i.varint(5, mi.validation ? 2 : 1);
    e.message(5, i);
  }
  if (!name.empty()) e.bytes(6, name);
  return plugin_data(2, e);
}

std::string session_start(const json& values, double start_time, const std::string& model_uri) {
  Message s;
  for (const auto& [k, v] : values.items()) {
    Message entry;  // map<string, Value> entries: key 1, value 2
    entry.bytes(1, k).message(2, proto_value(v));
    s.message(1, entry);
  }
  if (!model_uri.empty()) s.bytes(2, model_uri);
  s.fixed64(5, start_time);
  return plugin_data(3, s);
}

std::string session_end(Status status, double end_time) {
  Message s;
  s.varint(1, static_cast<uint64_t>(status)).fixed64(2, end_time);
  return plugin_data(4, s);
}

}  // namespace hparams

EventFileWriter::EventFileWriter(const fs::path& dir, double wall_time) {
  fs::create_directories(dir);
  // Named after every event file already in the directory (TensorBoard reads them in name
  // order): a later second, or the same one and a higher sequence number, even if the clock
  // went back.
  int64_t seconds = static_cast<int64_t>(wall_time);
  int sequence = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const std::string prefix = "events.out.tfevents.";
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const auto first_dot = name.find('.', prefix.size());
    const auto last_dot = name.rfind('.');
    try {
      const int64_t t = std::stoll(name.substr(prefix.size(), first_dot - prefix.size()));
      const int seq = std::stoi(name.substr(last_dot + 1));
      if (t > seconds) {
        seconds = t;
        sequence = seq + 1;
      } else if (t == seconds) {
        sequence = std::max(sequence, seq + 1);
      }
    } catch (const std::exception&) {
      // Another writer's file: its name sorts by its own rules.
    }
  }
  char host[256] = "localhost";
  if (gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "localhost");
  host[sizeof host - 1] = '\0';
  std::string host_name = host;
  for (char& c : host_name)
    if (c == '/' || c == '.') c = '_';
  char seq[16];
  std::snprintf(seq, sizeof seq, "%06d", sequence);
  path_ = dir / ("events.out.tfevents." + std::to_string(seconds) + "." + host_name + "." + seq);
  append({event::file_version(wall_time)});
}

void EventFileWriter::append(const std::vector<std::string>& events) {
  std::string bytes;
  for (const auto& e : events) bytes += frame_record(e);
  util::append_bytes(path_, bytes);
}

std::optional<double> seconds_since_epoch(const std::string& iso) {
  std::tm tm{};
  const char* end = strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) return std::nullopt;
  double frac = 0;
  if (*end == '.') {
    char* after = nullptr;
    frac = std::strtod(end, &after);
    end = after;
  }
  if (std::strcmp(end, "Z") != 0) return std::nullopt;
  return static_cast<double>(timegm(&tm)) + frac;
}

}  // namespace det::record::tensorboard
