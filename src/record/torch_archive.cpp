#include "det/record/torch_archive.h"

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <vector>

#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/strings.h"

namespace det::record {

namespace {

constexpr uint64_t kMaxPickle = uint64_t{64} << 20;     // a det checkpoint's data.pkl: < 1 MiB
constexpr uint64_t kMaxDirectory = uint64_t{64} << 20;  // the zip's central directory
constexpr size_t kMaxValues = size_t{4} << 20;          // stack + memo + marks of one pickle
constexpr size_t kMaxString = 256;                      // strings kept (longer: skipped)

uint64_t le(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

[[noreturn]] void fail(const util::ReadFile& f, const std::string& what) {
  throw CheckpointError(f.path().string() + ": " + what +
                        "; the checkpoint is corrupt or was edited: resume from another one");
}

// ---- the zip ----

struct Entry {
  uint16_t method = 0;
  uint64_t size = 0;        // uncompressed
  uint64_t compressed = 0;  // as stored
  uint64_t header = 0;      // offset of the local header
  uint64_t data = 0;        // offset of the data (after the local header)
};

class Zip {
 public:
  explicit Zip(const util::ReadFile& f) : f_(f) { read_directory(); }
  const std::map<std::string, Entry>& entries() const { return entries_; }
  const std::string& prefix() const { return prefix_; }
  const Entry* find(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : &it->second;
  }

 private:
  void read(void* dst, uint64_t n, uint64_t at, const char* what) const {
    f_.read_at(dst, n, at, what);
  }

  void read_directory() {
    const uint64_t size = f_.size();
    if (size < 22)
      fail(f_, "too short to be a LibTorch archive (" + std::to_string(size) + " bytes)");
    // The end-of-directory record: the last 22 bytes, or before a comment of up to 64 KiB.
    const uint64_t tail_len = std::min<uint64_t>(size, 22 + 65535);
    std::vector<unsigned char> tail(tail_len);
    read(tail.data(), tail_len, size - tail_len, "the zip's end record");
    int64_t at = -1;
    for (int64_t i = static_cast<int64_t>(tail_len) - 22; i >= 0; --i)
      if (le(&tail[i], 4) == 0x06054b50 &&
          static_cast<uint64_t>(i) + 22 + le(&tail[i + 20], 2) == tail_len) {
        at = i;
        break;
      }
    if (at < 0) fail(f_, "no zip end record: not a LibTorch archive, or cut short");
    const unsigned char* e = &tail[at];
    uint64_t count = le(e + 10, 2), dir_size = le(e + 12, 4), dir_at = le(e + 16, 4);
    if (count == 0xffff || dir_size == 0xffffffff || dir_at == 0xffffffff) {
      // Zip64: a locator just before the end record points at the zip64 end record.
      const uint64_t end_at = size - tail_len + static_cast<uint64_t>(at);
      if (end_at < 20) fail(f_, "a zip64 archive without its locator");
      unsigned char loc[20];
      read(loc, 20, end_at - 20, "the zip64 locator");
      if (le(loc, 4) != 0x07064b50) fail(f_, "a zip64 archive without its locator");
      const uint64_t rec_at = le(loc + 8, 8);
      if (rec_at > size || size - rec_at < 56)
        fail(f_, "the zip64 end record lies past the file's end");
      unsigned char rec[56];
      read(rec, 56, rec_at, "the zip64 end record");
      if (le(rec, 4) != 0x06064b50) fail(f_, "the zip64 locator points at no zip64 end record");
      count = le(rec + 32, 8);
      dir_size = le(rec + 40, 8);
      dir_at = le(rec + 48, 8);
    }
    if (dir_at > size || dir_size > size - dir_at)
      fail(f_, "the zip's directory (" + std::to_string(dir_size) + " bytes at " +
                   std::to_string(dir_at) + ") lies past the file's end (" + std::to_string(size) +
                   " bytes)");
    if (dir_size > kMaxDirectory)
      fail(f_, "the zip's directory is " + std::to_string(dir_size) + " bytes, more than " +
                   std::to_string(kMaxDirectory) + " a checkpoint's may hold");
    if (count > dir_size / 46)
      fail(f_, "the zip claims " + std::to_string(count) + " records, more than its " +
                   std::to_string(dir_size) + "-byte directory can list");
    std::vector<unsigned char> dir(dir_size);
    read(dir.data(), dir_size, dir_at, "the zip's directory");
    size_t p = 0;
    for (uint64_t k = 0; k < count; ++k) p = read_entry(dir, p, k);
  }

  size_t read_entry(const std::vector<unsigned char>& dir, size_t p, uint64_t k) {
    const std::string where = "the zip's directory entry " + std::to_string(k);
    if (dir.size() - p < 46 || le(&dir[p], 4) != 0x02014b50) fail(f_, where + " is malformed");
    const unsigned char* h = &dir[p];
    Entry e;
    e.method = static_cast<uint16_t>(le(h + 10, 2));
    e.compressed = le(h + 20, 4);
    e.size = le(h + 24, 4);
    const size_t name_len = le(h + 28, 2), extra_len = le(h + 30, 2), comment_len = le(h + 32, 2);
    e.header = le(h + 42, 4);
    if (dir.size() - p - 46 < name_len + extra_len + comment_len)
      fail(f_, where + " runs past the directory's end");
    std::string name(reinterpret_cast<const char*>(h + 46), name_len);
    // Zip64 sizes and offset: in the extra field 0x0001, in this order, for those saturated.
    for (size_t x = 0; x + 4 <= extra_len;) {
      const unsigned char* ex = h + 46 + name_len + x;
      const size_t id = le(ex, 2), len = le(ex + 2, 2);
      if (x + 4 + len > extra_len) fail(f_, where + ": its extra field runs past its end");
      if (id == 1) {
        size_t q = 4;
        for (uint64_t* v : {&e.size, &e.compressed, &e.header}) {
          if (*v != 0xffffffff) continue;
          if (q + 8 > 4 + len) fail(f_, where + ": its zip64 field is too short");
          *v = le(ex + q, 8);
          q += 8;
        }
      }
      x += 4 + len;
    }
    check_local(name, e, where);
    if (prefix_.empty()) prefix_ = name.substr(0, name.find('/'));
    if (!entries_.emplace(name, e).second)
      fail(f_, "the zip holds record " + util::quote(name) + " twice");
    return p + 46 + name_len + extra_len + comment_len;
  }

  // The record's local header and data lie within the file.
  void check_local(const std::string& name, Entry& e, const std::string& where) {
    const uint64_t size = f_.size();
    const std::string rec = "record " + util::quote(name);
    if (e.header > size || size - e.header < 30)
      fail(f_, rec + ": its header lies past the file's end");
    unsigned char h[30];
    read(h, 30, e.header, "a record's header");
    if (le(h, 4) != 0x04034b50)
      fail(f_, rec + ": no record header where the directory points (" + where + ")");
    e.data = e.header + 30 + le(h + 26, 2) + le(h + 28, 2);
    if (e.data > size || size - e.data < e.compressed)
      fail(f_, rec + " (" + std::to_string(e.compressed) + " bytes at " + std::to_string(e.data) +
                   ") runs past the file's end (" + std::to_string(size) + " bytes)");
    if (e.method == 0 && e.compressed != e.size)
      fail(f_, rec + " is stored with " + std::to_string(e.compressed) + " bytes but claims " +
                   std::to_string(e.size));
  }

  const util::ReadFile& f_;
  std::map<std::string, Entry> entries_;
  std::string prefix_;
};

// ---- the pickles ----

struct Value {
  enum class Kind : uint8_t { kOther, kNone, kInt, kStr, kTuple, kGlobal, kStorage };
  Kind kind = Kind::kOther;
  int64_t i = 0;     // kInt; kStorage: its elements
  int itemsize = 0;  // kStorage
  std::string s;     // kStr (short ones), kGlobal ("module.name"), kStorage (its record)
  std::shared_ptr<const std::vector<Value>> items;  // kTuple
};

int itemsize_of(const std::string& storage) {
  static const std::unordered_map<std::string, int> sizes = {{"torch.DoubleStorage", 8},
                                                             {"torch.FloatStorage", 4},
                                                             {"torch.HalfStorage", 2},
                                                             {"torch.BFloat16Storage", 2},
                                                             {"torch.LongStorage", 8},
                                                             {"torch.IntStorage", 4},
                                                             {"torch.ShortStorage", 2},
                                                             {"torch.CharStorage", 1},
                                                             {"torch.ByteStorage", 1},
                                                             {"torch.BoolStorage", 1},
                                                             {"torch.ComplexFloatStorage", 8},
                                                             {"torch.ComplexDoubleStorage", 16},
                                                             {"torch.ComplexHalfStorage", 4},
                                                             {"torch.QInt8Storage", 1},
                                                             {"torch.QUInt8Storage", 1},
                                                             {"torch.QInt32Storage", 4},
                                                             {"torch.Float8_e5m2Storage", 1},
                                                             {"torch.Float8_e4m3fnStorage", 1},
                                                             {"torch.Float8_e5m2fnuzStorage", 1},
                                                             {"torch.Float8_e4m3fnuzStorage", 1},
                                                             {"torch.UInt16Storage", 2},
                                                             {"torch.UInt32Storage", 4},
                                                             {"torch.UInt64Storage", 8}};
  auto it = sizes.find(storage);
  return it == sizes.end() ? 0 : it->second;
}

class PickleWalk {
 public:
  PickleWalk(const util::ReadFile& f, const Zip& zip, std::string record, std::string dir,
             std::string bytes, TorchArchiveSummary& summary, std::set<std::string>& storages_seen)
      : f_(f),
        zip_(zip),
        record_(std::move(record)),
        dir_(std::move(dir)),
        b_(std::move(bytes)),
        summary_(summary),
        seen_(storages_seen) {}

  void run() {
    while (true) {
      if (pos_ >= b_.size()) bad("ends without its STOP opcode");
      op_at_ = pos_;
      const auto op = static_cast<unsigned char>(b_[pos_++]);
      if (op == '.') return;  // STOP
      step(op);
      if (stack_.size() + memo_.size() + marks_.size() > kMaxValues)
        bad("holds more than " + std::to_string(kMaxValues) + " values at once");
    }
  }

 private:
  [[noreturn]] void bad(const std::string& what) const {
    fail(f_, "pickle " + util::quote(record_) + " " + what + " (opcode at byte " +
                 std::to_string(op_at_) + ")");
  }
  const unsigned char* take(uint64_t n, const char* op) {
    if (n > b_.size() - pos_)
      bad(std::string("has a ") + op + " that claims " + std::to_string(n) + " bytes but only " +
          std::to_string(b_.size() - pos_) + " remain");
    const auto* p = reinterpret_cast<const unsigned char*>(b_.data() + pos_);
    pos_ += n;
    return p;
  }
  uint64_t arg(int n, const char* op) { return le(take(n, op), n); }
  std::string line(const char* op) {
    const size_t nl = b_.find('\n', pos_);
    if (nl == std::string::npos || nl - pos_ > 1024)
      bad(std::string("has a ") + op + " without its line");
    std::string s = b_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return s;
  }
  Value pop() {
    if (stack_.empty() || (!marks_.empty() && marks_.back() >= stack_.size()))
      bad("takes from an empty stack");
    Value v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  std::vector<Value> pop_mark() {
    if (marks_.empty()) bad("uses a mark it never set");
    const size_t m = marks_.back();
    marks_.pop_back();
    if (m > stack_.size()) bad("uses a mark past the stack");
    std::vector<Value> items(std::make_move_iterator(stack_.begin() + static_cast<ptrdiff_t>(m)),
                             std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  void push(Value v) { stack_.push_back(std::move(v)); }
  void push_other() { push(Value{}); }
  void push_int(int64_t i) {
    Value v;
    v.kind = Value::Kind::kInt;
    v.i = i;
    push(std::move(v));
  }
  void push_tuple(std::vector<Value> items) {
    Value v;
    v.kind = Value::Kind::kTuple;
    v.items = std::make_shared<const std::vector<Value>>(std::move(items));
    push(std::move(v));
  }
  void push_string(uint64_t n, const char* op) {
    const unsigned char* p = take(n, op);
    Value v;
    if (n <= kMaxString) {
      v.kind = Value::Kind::kStr;
      v.s.assign(reinterpret_cast<const char*>(p), n);
    }
    push(std::move(v));
  }
  void put(uint64_t id) {
    if (stack_.empty()) bad("memoizes from an empty stack");
    if (id > memo_.size()) bad("memoizes at " + std::to_string(id) + ", past its memo's end");
    memo_[id] = stack_.back();
  }
  void get(uint64_t id) {
    auto it = memo_.find(id);
    if (it == memo_.end()) bad("refers to memo entry " + std::to_string(id) + ", never set");
    push(it->second);
  }

  void push_global(const std::string& module, const std::string& name) {
    Value v;
    v.kind = Value::Kind::kGlobal;
    v.s = module + "." + name;
    push(std::move(v));
  }

  // The opcodes whose argument is a length-prefixed run of bytes: a string kept (when short) or
  // bytes skipped. Every length is checked against what remains (take).
  struct Sized {
    unsigned char op;
    const char* name;
    int prefix;   // bytes of the length
    bool string;  // a string (kept when short), else bytes (skipped)
  };
  static constexpr Sized kSized[] = {
      {'X', "BINUNICODE", 4, true},        {0x8d, "BINUNICODE8", 8, true},
      {0x8c, "SHORT_BINUNICODE", 1, true}, {'T', "BINSTRING", 4, true},
      {'U', "SHORT_BINSTRING", 1, true},   {'B', "BINBYTES", 4, false},
      {'C', "SHORT_BINBYTES", 1, false},   {0x8e, "BINBYTES8", 8, false}};

  void step(unsigned char op) {
    for (const Sized& s : kSized)
      if (s.op == op) {
        const uint64_t n = arg(s.prefix, s.name);
        if (s.string) return push_string(n, s.name);
        take(n, s.name);
        return push_other();
      }
    if (scalar(op) || container(op) || object(op)) return;
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", op);
    bad(std::string("has opcode ") + hex + ", which LibTorch's archives never hold");
  }

  // Numbers, None, booleans, globals and the framing opcodes. False: not one of these.
  bool scalar(unsigned char op) {
    switch (op) {
      case 0x80:
        take(1, "PROTO");
        return true;
      case 0x95:
        take(8, "FRAME");
        return true;
      case 'N': {
        Value v;
        v.kind = Value::Kind::kNone;
        push(std::move(v));
        return true;
      }
      case 0x88:
        push_int(1);
        return true;
      case 0x89:
        push_int(0);
        return true;
      case 'J':
        push_int(static_cast<int32_t>(arg(4, "BININT")));
        return true;
      case 'K':
        push_int(static_cast<int64_t>(arg(1, "BININT1")));
        return true;
      case 'M':
        push_int(static_cast<int64_t>(arg(2, "BININT2")));
        return true;
      case 0x8a:
        long_int(arg(1, "LONG1"), "LONG1");
        return true;
      case 0x8b:
        long_int(arg(4, "LONG4"), "LONG4");
        return true;
      case 'G':
        take(8, "BINFLOAT");
        push_other();
        return true;
      case 'c': {
        const std::string module = line("GLOBAL");
        push_global(module, line("GLOBAL"));
        return true;
      }
      case 0x93: {
        const Value name = pop(), module = pop();
        push_global(module.s, name.s);
        return true;
      }
      default:
        return false;
    }
  }

  // Marks, tuples, lists, dicts and sets. False: not one of these.
  bool container(unsigned char op) {
    switch (op) {
      case '(':
        marks_.push_back(stack_.size());
        return true;
      case ')':
        push_tuple({});
        return true;
      case 't':
        push_tuple(pop_mark());
        return true;
      case 0x85: {
        Value a = pop();
        push_tuple({std::move(a)});
        return true;
      }
      case 0x86: {
        Value b = pop(), a = pop();
        push_tuple({std::move(a), std::move(b)});
        return true;
      }
      case 0x87: {
        Value c = pop(), b = pop(), a = pop();
        push_tuple({std::move(a), std::move(b), std::move(c)});
        return true;
      }
      case ']':
      case '}':
      case 0x8f:
        push_other();
        return true;
      case 'l':
      case 'd':
      case 0x91:
        pop_mark();
        push_other();
        return true;
      case 'a':
        pop();
        return true;
      case 'e':
      case 'u':
      case 0x90:
        pop_mark();
        return true;
      case 's':
        pop();
        pop();
        return true;
      default:
        return false;
    }
  }

  // The stack's own opcodes, the memo, persistent ids (storages) and objects built from
  // callables. False: none of these.
  bool object(unsigned char op) {
    switch (op) {
      case '0':
        pop();
        return true;
      case '1':
        pop_mark();
        return true;
      case '2': {
        Value v = pop();
        push(v);
        push(std::move(v));
        return true;
      }
      case 'q':
        put(arg(1, "BINPUT"));
        return true;
      case 'r':
        put(arg(4, "LONG_BINPUT"));
        return true;
      case 0x94:
        put(memo_.size());
        return true;
      case 'h':
        get(arg(1, "BINGET"));
        return true;
      case 'j':
        get(arg(4, "LONG_BINGET"));
        return true;
      case 'Q':
        push(persistent(pop()));
        return true;
      case 'R': {
        Value args = pop(), fn = pop();
        push(reduce(fn, args));
        return true;
      }
      case 'b':
        pop();
        return true;  // BUILD: the state; the object stays
      case 0x81:
        pop();
        pop();
        push_other();
        return true;
      case 0x92:
        pop();
        pop();
        pop();
        push_other();
        return true;
      default:
        return false;
    }
  }

  void long_int(uint64_t n, const char* op) {
    const unsigned char* p = take(n, op);
    if (n == 0 || n > 8) return push_other();
    uint64_t v = le(p, static_cast<int>(n));
    if (n < 8 && (p[n - 1] & 0x80)) v |= ~uint64_t{0} << (8 * n);  // sign-extend
    push_int(static_cast<int64_t>(v));
  }

  // ('storage', torch.<Type>Storage, key, device, numel): the record <dir>/<key> must hold it.
  Value persistent(const Value& id) {
    const auto* t = id.kind == Value::Kind::kTuple ? id.items.get() : nullptr;
    if (!t || t->empty() || (*t)[0].kind != Value::Kind::kStr || (*t)[0].s != "storage")
      return Value{};
    if (t->size() != 5 || (*t)[1].kind != Value::Kind::kGlobal ||
        (*t)[2].kind != Value::Kind::kStr || (*t)[4].kind != Value::Kind::kInt)
      bad("names a storage in a form LibTorch does not write");
    const std::string& type = (*t)[1].s;
    const int itemsize = itemsize_of(type);
    if (itemsize == 0) bad("names a storage of unknown type " + util::quote(type));
    const int64_t numel = (*t)[4].i;
    const std::string name = zip_.prefix() + "/" + dir_ + (*t)[2].s;
    const Entry* e = zip_.find(name);
    if (!e) bad("names storage record " + util::quote(name) + ", which the archive does not hold");
    if (e->method != 0)
      fail(f_,
           "record " + util::quote(name) + " is compressed; LibTorch stores tensors as they are");
    if (numel < 0) bad("names storage record " + util::quote(name) + " with a negative size");
    if (static_cast<uint64_t>(numel) > e->size / static_cast<uint64_t>(itemsize))
      fail(f_, "record " + util::quote(name) + " holds " + std::to_string(e->size) +
                   " bytes but its storage (" + type + ", " + std::to_string(numel) +
                   " elements) needs " +
                   std::to_string(static_cast<uint64_t>(
                       std::min<__int128>(static_cast<__int128>(numel) * itemsize, INT64_MAX))));
    if (seen_.insert(name).second)
      summary_.storage_bytes += static_cast<uint64_t>(numel) * itemsize;
    Value v;
    v.kind = Value::Kind::kStorage;
    v.i = numel;
    v.itemsize = itemsize;
    v.s = name;
    return v;
  }

  // The last element a tensor reaches: offset + sum((size - 1) * stride), in 128 bits; nullopt
  // for an empty tensor (it reaches none).
  std::optional<__int128> last_element(int64_t offset, const std::vector<Value>& sizes,
                                       const std::vector<Value>& strides) const {
    __int128 last = offset;
    bool empty = false;
    for (size_t d = 0; d < sizes.size(); ++d) {
      if (sizes[d].kind != Value::Kind::kInt || strides[d].kind != Value::Kind::kInt ||
          sizes[d].i < 0 || strides[d].i < 0 || sizes[d].i > (int64_t{1} << 48) ||
          strides[d].i > (int64_t{1} << 48))
        bad("rebuilds a tensor with a negative or non-integer size or stride");
      if (sizes[d].i == 0) empty = true;
      last += static_cast<__int128>(sizes[d].i - 1) * strides[d].i;
    }
    if (empty) return std::nullopt;
    return last;
  }

  // torch._utils._rebuild_tensor_v2(storage, offset, sizes, strides, ...): within the storage.
  Value reduce(const Value& fn, const Value& args) {
    if (fn.kind != Value::Kind::kGlobal || fn.s != "torch._utils._rebuild_tensor_v2")
      return Value{};
    const auto* a = args.kind == Value::Kind::kTuple ? args.items.get() : nullptr;
    if (!a || a->size() < 4 || (*a)[0].kind != Value::Kind::kStorage ||
        (*a)[1].kind != Value::Kind::kInt || (*a)[2].kind != Value::Kind::kTuple ||
        (*a)[3].kind != Value::Kind::kTuple || (*a)[2].items->size() != (*a)[3].items->size())
      bad("rebuilds a tensor from arguments LibTorch does not write");
    const Value& storage = (*a)[0];
    const auto& sizes = *(*a)[2].items;
    const auto& strides = *(*a)[3].items;
    const std::optional<__int128> last = last_element((*a)[1].i, sizes, strides);
    if ((*a)[1].i < 0) bad("rebuilds a tensor at a negative offset");
    if (last && *last >= storage.i)
      fail(f_, "a tensor in pickle " + util::quote(record_) + " reaches element " +
                   std::to_string(static_cast<int64_t>(std::min<__int128>(*last, INT64_MAX))) +
                   " of storage record " + util::quote(storage.s) + ", which holds " +
                   std::to_string(storage.i) + " elements");
    ++summary_.tensors;
    return Value{};
  }

  const util::ReadFile& f_;
  const Zip& zip_;
  std::string record_, dir_, b_;
  TorchArchiveSummary& summary_;
  std::set<std::string>& seen_;
  size_t pos_ = 0, op_at_ = 0;
  std::vector<Value> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value> memo_;
};

}  // namespace

TorchArchiveSummary check_torch_archive(const util::ReadFile& file) {
  Zip zip(file);
  TorchArchiveSummary summary;
  summary.records = zip.entries().size();
  std::set<std::string> storages;
  bool any = false;
  for (const char* archive : {"data", "constants"}) {
    const std::string name = zip.prefix() + "/" + archive + ".pkl";
    const Entry* e = zip.find(name);
    if (!e) continue;
    any = true;
    if (e->method != 0)
      fail(file,
           "pickle " + util::quote(name) + " is compressed; LibTorch stores pickles as they are");
    if (e->size > kMaxPickle)
      fail(file, "pickle " + util::quote(name) + " is " + std::to_string(e->size) +
                     " bytes, more than the " + std::to_string(kMaxPickle) +
                     " a checkpoint's may hold");
    std::string bytes(e->size, '\0');
    file.read_at(bytes.data(), e->size, e->data, "pickle " + name);
    PickleWalk(file, zip, name, std::string(archive) + "/", std::move(bytes), summary, storages)
        .run();
  }
  if (!any) fail(file, "no data.pkl record: not a LibTorch archive");
  return summary;
}

}  // namespace det::record
