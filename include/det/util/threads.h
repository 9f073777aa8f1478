#pragma once
/// \file
/// det's default for the BLAS library's own threads (docs/performance.md, Threads).

namespace det::util {

/// LibTorch's intra-op pool already runs the parallel work (convolutions loop over the batch on
/// it and call BLAS per image); a BLAS pool beside it oversubscribes the cores. So det holds BLAS
/// to one thread unless the user chose: OPENBLAS_NUM_THREADS, OMP_NUM_THREADS or
/// DET_BLAS_THREADS set. Sets OPENBLAS_NUM_THREADS for child processes (workers read it when
/// OpenBLAS starts) and, when OpenBLAS is loaded in this process, calls its
/// openblas_set_num_threads. Returns the count set, or 0 when the user's setting stands.
/// DET_BLAS_THREADS=0 leaves everything as it was. Measured in docs/performance.md (Threads).
int default_blas_threads();

}  // namespace det::util
