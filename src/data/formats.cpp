#include "formats.h"

#include <cstring>
#include <stdexcept>

#include "det/util/error.h"

namespace det::data {

IdxHeader read_idx_header(InputFile& in, int ndims, uint64_t limit) {
  if (ndims < 1 || ndims > 8) throw std::invalid_argument("read_idx_header: ndims must be 1-8");
  const uint32_t expected_magic = 0x800u + static_cast<uint32_t>(ndims);
  const std::string kind = ndims == 3   ? "image"
                           : ndims == 1 ? "label"
                                        : std::to_string(ndims) + "-d";
  const size_t header_bytes = 4 + 4 * static_cast<size_t>(ndims);
  unsigned char h[4 + 4 * 8];
  const size_t got = in.read(h, header_bytes);
  auto too_short = [&] {
    throw DataError(in.name() + ": truncated: " + std::to_string(got) +
                    " bytes, shorter than the " + std::to_string(header_bytes) +
                    "-byte IDX header; delete it and fetch it again");
  };
  if (got < 4) too_short();
  auto be32 = [&](size_t off) {
    return uint32_t(h[off]) << 24 | uint32_t(h[off + 1]) << 16 | uint32_t(h[off + 2]) << 8 |
           uint32_t(h[off + 3]);
  };
  const uint32_t magic = be32(0);
  if (magic != expected_magic)
    throw DataError(in.name() + ": not an IDX " + kind + " file: magic number " +
                    std::to_string(magic) + ", expected " + std::to_string(expected_magic) +
                    (magic == 2049   ? " (this is a label file)"
                     : magic == 2051 ? " (this is an image file)"
                                     : "") +
                    "; check which file is which");
  if (got < header_bytes) too_short();
  IdxHeader out;
  int64_t product = 1;
  bool overflow = false;
  std::string dims;
  for (int i = 0; i < ndims; ++i) {
    const int64_t d = be32(4 + 4 * static_cast<size_t>(i));
    out.dims.push_back(d);
    dims += (i ? "x" : "") + std::to_string(d);
    overflow = overflow || !checked_mul(product, d, product);
  }
  std::string what = ndims == 3
                         ? std::to_string(out.dims[0]) + " images of " +
                               std::to_string(out.dims[1]) + "x" + std::to_string(out.dims[2])
                     : ndims == 1 ? std::to_string(out.dims[0]) + " labels"
                                  : "dimensions " + dims;
  if (overflow || static_cast<uint64_t>(product) > UINT64_MAX - header_bytes)
    throw DataError(in.name() + ": the header announces " + what +
                    ", whose size overflows a 64-bit integer; the file is corrupt or not IDX");
  out.body_bytes = static_cast<uint64_t>(product);
  in.check_claimed_size(header_bytes + out.body_bytes, limit, what);
  return out;
}

void read_idx_body(InputFile& in, const IdxHeader& header, void* dst) {
  in.read_exact(dst, header.body_bytes, "the IDX body");
  in.expect_end();
}

namespace {

struct CifarLayout {
  static constexpr size_t kSide = 32, kPlane = kSide * kSide, kPixels = kPlane * 3;
  size_t label_bytes, record;
  uint64_t max_label;
  int classes;
  bool coarse;
  CifarLayout(int c, bool co)
      : label_bytes(c == 100 ? 2 : 1),
        record(label_bytes + kPixels),
        max_label(co ? 19 : static_cast<uint64_t>(c - 1)),
        classes(c),
        coarse(co) {}
  uint8_t label(const std::vector<uint8_t>& rec) const {
    return classes == 100 ? rec[coarse ? 0 : 1] : rec[0];
  }
};

const char* kCifarFix = "; delete it and fetch it again";

// One pass over the records: every check, and `each(record index, record bytes)` for each.
// Returns the number of records.
template <class Each>
uint64_t walk_cifar(InputFile& in, const CifarLayout& L, uint64_t limit, Each&& each) {
  std::vector<uint8_t> rec(L.record);
  uint64_t total = 0, r = 0;
  for (;; ++r) {
    const size_t got = in.read(rec.data(), L.record);
    if (got == 0) break;
    if (got < L.record)
      throw DataError(in.name() + ": truncated: record " + std::to_string(r) + " has " +
                      std::to_string(got) + " of " + std::to_string(L.record) +
                      " bytes (the file should hold whole " + std::to_string(L.record) +
                      "-byte records)" + kCifarFix);
    total += L.record;
    if (total > limit)
      throw DataError(in.name() + ": holds more than the limit of " + std::to_string(limit) +
                      " bytes for a data file; the file is corrupt or not CIFAR "
                      "(DET_MAX_DATA_FILE_BYTES raises the limit)");
    const uint8_t lab = L.label(rec);
    if (lab > L.max_label)
      throw DataError(in.name() + ": record " + std::to_string(r) + " has label " +
                      std::to_string(lab) + ", expected 0-" + std::to_string(L.max_label) +
                      " (is this a CIFAR-" + std::to_string(L.classes) + " file?)");
    each(r, rec);
  }
  if (total == 0) throw DataError(in.name() + ": empty file" + kCifarFix);
  in.expect_end();
  return r;
}

}  // namespace

void read_cifar_records(InputFile& in, int classes, bool coarse, uint64_t limit,
                        std::vector<uint8_t>& pixels, std::vector<uint8_t>& labels) {
  const CifarLayout L(classes, coarse);
  uint64_t records = 0;
  if (!in.gzip()) {
    // A plain file's size is exact: checked, and the memory taken, before a record is read.
    const uint64_t size = in.stored_size();
    if (size > limit)
      throw DataError(in.name() + ": holds " + std::to_string(size) +
                      " bytes, more than the limit of " + std::to_string(limit) +
                      " bytes for a data file; the file is corrupt or not CIFAR "
                      "(DET_MAX_DATA_FILE_BYTES raises the limit)");
    if (size == 0) throw DataError(in.name() + ": empty file" + kCifarFix);
    if (size % L.record != 0)
      throw DataError(in.name() + ": truncated: record " + std::to_string(size / L.record) +
                      " has " + std::to_string(size % L.record) + " of " +
                      std::to_string(L.record) + " bytes (the file should hold whole " +
                      std::to_string(L.record) + "-byte records)" + kCifarFix);
    records = size / L.record;
  } else {
    // A gzip stream's length is only a claim until it has been inflated (its trailer holds the
    // length modulo 2^32): a first pass inflates and checks it all, holding one record, and only
    // then is the memory taken. Growing the arrays while streaming instead would, near the limit,
    // hold the old and the new buffer at once: about 1.7 times the limit.
    if (auto known = in.known_size(); known && *known > limit)
      throw DataError(in.name() + ": the gzip trailer records " + std::to_string(*known) +
                      " bytes, more than the limit of " + std::to_string(limit) +
                      " bytes for a data file; the file is corrupt or not CIFAR "
                      "(DET_MAX_DATA_FILE_BYTES raises the limit)");
    records = walk_cifar(in, L, limit, [](uint64_t, const std::vector<uint8_t>&) {});
    in.rewind();
  }
  pixels.reserve(pixels.size() + records * CifarLayout::kPixels);
  labels.reserve(labels.size() + records);
  auto changed = [&](uint64_t) {
    return DataError(in.name() + ": changed while it was read (" + std::to_string(records) +
                     " records on the first pass, another number on the second)" + kCifarFix);
  };
  const uint64_t read = walk_cifar(in, L, limit, [&](uint64_t r, const std::vector<uint8_t>& rec) {
    if (r >= records) throw changed(r + 1);
    labels.push_back(L.label(rec));
    // Planes R, G, B (each 32x32 row-major) -> HWC.
    const uint8_t* planes = rec.data() + L.label_bytes;
    const size_t base = pixels.size();
    pixels.resize(base + CifarLayout::kPixels);
    uint8_t* dst = pixels.data() + base;
    for (size_t p = 0; p < CifarLayout::kPlane; ++p)
      for (size_t c = 0; c < 3; ++c) dst[p * 3 + c] = planes[c * CifarLayout::kPlane + p];
  });
  if (read != records) throw changed(read);
}

}  // namespace det::data
