#pragma once
/// \file
/// det's defaults for the math libraries under LibTorch: the BLAS library's threads, LibTorch's
/// intra-op threads (docs/performance.md, Threads) and MKL's reproducibility.

namespace det::util {

/// LibTorch's intra-op pool already runs the parallel work (convolutions loop over the batch on
/// it and call BLAS per image); a BLAS pool beside it oversubscribes the cores. So det holds BLAS
/// to one thread unless the user chose: OPENBLAS_NUM_THREADS, OMP_NUM_THREADS or
/// DET_BLAS_THREADS set. Sets OPENBLAS_NUM_THREADS for child processes (workers read it when
/// OpenBLAS starts) and, when OpenBLAS is loaded in this process, calls its
/// openblas_set_num_threads. Returns the count set, or 0 when the user's setting stands.
/// DET_BLAS_THREADS=0 leaves everything as it was. Measured in docs/performance.md (Threads).
int default_blas_threads();

/// MKL (PyPI's LibTorch) picks code paths by the alignment of its operands, so the same
/// computation in another process (a resumed trial, a rank started by another launcher) can differ
/// in the last bits. Sets MKL_CBWR=AUTO (MKL's conditional numerical reproducibility: the same
/// results on the same processor and thread count, whatever the alignment) unless MKL_CBWR is set;
/// MKL reads it at its first call, and child processes inherit it. Measured at no cost
/// (docs/distributed.md, Bit-exact runs). Returns whether it set it.
bool default_mkl_reproducibility();

/// The CPUs this process may use: its affinity mask, lowered to a cgroup v2 CPU quota
/// (/sys/fs/cgroup/cpu.max) when one is set. At least 1.
int usable_cpus();

/// det's default for LibTorch's intra-op threads in a worker that shares this machine's CPUs with
/// `sharers` processes like it (ranks on the node, or trials run at once): usable_cpus() /
/// sharers, at least 1. LibTorch's own default is the physical core count as its build counts
/// them, which can be fewer than the CPUs a process may use. DET_INTRA_OP_THREADS=N sets N;
/// DET_INTRA_OP_THREADS=0 or OMP_NUM_THREADS set returns 0: LibTorch's default (or the
/// user's OMP_NUM_THREADS) stands. Throws ConfigError for a DET_INTRA_OP_THREADS that is not a
/// number >= 0.
int default_intra_op_threads(int sharers);

}  // namespace det::util
