#pragma once
// Internal to the data layer, and torch-free (the fuzz targets link it without LibTorch): the
// readers of the binary dataset formats, IDX (MNIST) and CIFAR's records. Every size a header
// claims is checked against the file and a limit before memory is taken.
#include <cstdint>
#include <string>
#include <vector>

#include "io.h"

namespace det::data {

/// The header of an IDX file of unsigned bytes.
struct IdxHeader {
  std::vector<int64_t> dims;  ///< e.g. {60000, 28, 28}
  uint64_t body_bytes = 0;    ///< The product of the dimensions.
};

/// Reads the header of an IDX file of unsigned bytes with `ndims` dimensions (magic
/// 0x0000080N: 2051 for images, 2049 for labels) and checks, before anything is allocated, that
/// the dimensions' product does not overflow, is at most `limit` and is exactly what the file
/// holds (InputFile::check_claimed_size). Throws DataError naming the file.
IdxHeader read_idx_header(InputFile& in, int ndims, uint64_t limit);

/// Reads the `header.body_bytes` bytes of the body into `dst` and checks that nothing follows.
void read_idx_body(InputFile& in, const IdxHeader& header, void* dst);

/// Reads every record of a CIFAR binary file (CIFAR-10: a label byte then 3072 bytes, the R, G
/// and B planes of a 32x32 image; CIFAR-100: coarse and fine label bytes, then the planes) and
/// appends the images as HWC pixels and the labels (`coarse`: CIFAR-100's superclasses).
/// The data must hold whole records, at most `limit` bytes of them; a label out of range is an
/// error naming the record. Throws DataError naming the file.
void read_cifar_records(InputFile& in, int classes, bool coarse, uint64_t limit,
                        std::vector<uint8_t>& pixels_hwc, std::vector<uint8_t>& labels);

}  // namespace det::data
