#pragma once
/// \file
/// glibc allocator tuning for training loops.

namespace det::util {

/// Keeps large tensor buffers in the heap instead of mmap/munmap-ing them every step: raises
/// glibc's mmap threshold to its maximum (32 MiB) and the trim threshold to 1 GiB. On a 2-core
/// machine this removes most of a training loop's kernel time (see docs/performance.md).
/// Does nothing when DET_MALLOC_TUNING=0. Returns true if the settings were applied.
bool tune_allocator();

}  // namespace det::util
