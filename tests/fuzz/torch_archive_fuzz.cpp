// Fuzz target: a checkpoint's state.pt (det::record::check_torch_archive), the check that stands
// between a file det did not write and LibTorch, which trusts every size in it. The input is put
// in an anonymous memory file, as a file on disk would be read. CheckpointError is the expected
// answer to bad input; anything else escaping, or a crash, is a bug.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "det/record/torch_archive.h"
#include "det/util/error.h"
#include "det/util/fs.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = ::memfd_create("state.pt", MFD_CLOEXEC);
  if (fd < 0) __builtin_trap();
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) __builtin_trap();
    done += static_cast<size_t>(n);
  }
  try {
    const det::util::ReadFile file("/proc/self/fd/" + std::to_string(fd),
                                   &det::util::throw_as<det::CheckpointError>);
    const auto summary = det::record::check_torch_archive(file);
    if (summary.storage_bytes > size) __builtin_trap();  // every storage lies within the file
  } catch (const det::CheckpointError&) {
  }
  ::close(fd);
  return 0;
}
