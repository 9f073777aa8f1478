#pragma once
/// \file
/// A check of a LibTorch archive (what `torch::save` writes: a zip of pickles and tensor
/// records) before LibTorch reads it. LibTorch trusts the archive: a tensor whose pickle claims
/// more elements than its record holds is read past the record's end (a crash, or silent
/// garbage), and a pickle whose string claims 2 GiB has the memory taken before the read fails.
/// This reads the zip's central directory and walks every pickle's opcodes without building the
/// objects, so that each claim is checked against the bytes that are there.

#include <cstdint>
#include <string>

namespace det::util {
class ReadFile;
}

namespace det::record {

/// What a checked archive holds.
struct TorchArchiveSummary {
  size_t records = 0;          ///< Entries in the zip.
  size_t tensors = 0;          ///< Tensors the pickles rebuild.
  uint64_t storage_bytes = 0;  ///< Bytes of the distinct storages they use.
};

/// Checks `file` as a LibTorch archive: the zip's directory lies within the file and every
/// record within it; each pickle (`data.pkl`, `constants.pkl`) uses only opcodes LibTorch's
/// unpickler reads, and each length, memo reference and mark it uses is within its bytes; each
/// storage it names is an uncompressed record holding at least its elements times their size;
/// each tensor's offset, sizes and strides stay within its storage. Throws det::CheckpointError
/// with a one-line message naming the file, the record and the fault ("record
/// 'state/data/3' holds 1000 bytes but its storage (torch.FloatStorage, 1179648 elements) needs
/// 4718592"). A pickle may hold at most 64 MiB.
TorchArchiveSummary check_torch_archive(const util::ReadFile& file);

}  // namespace det::record
