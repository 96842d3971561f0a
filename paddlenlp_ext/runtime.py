"""Process-wide settings for running Paddle on CPU: the math thread count, the allocator, MKL's code path.

Paddle runs its CPU math (MKL, oneDNN) on one thread unless told otherwise, which leaves every other core idle; every
operator output larger than glibc's mmap threshold is a fresh mapping whose pages fault in one by one; and on a CPU
not made by Intel, the MKL that Paddle ships runs its matmuls on its slowest code path. Call `configure_cpu` once at
start-up, before the first matmul (the trainer, the prediction scripts and the benchmark do). Importing the package
changes none of these, so a host application that manages threads or memory itself keeps control.
"""

import ctypes
import ctypes.util
import os

__all__ = [
    "cpu_threads",
    "set_cpu_threads",
    "math_threads",
    "keep_freed_memory",
    "cpu_info",
    "use_mkl_avx2",
    "configure_cpu",
]

_math_threads = 1  # what set_cpu_threads last gave Paddle; one thread is Paddle's own default

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _launch_environment() -> dict:
    """The environment the process was started with; Paddle's import rewrites os.environ (see _omp_num_threads)."""
    try:
        with open("/proc/self/environ", "rb") as f:
            entries = f.read().split(b"\0")
    except OSError:  # not Linux: os.environ is the best available record
        return dict(os.environ)
    return dict(entry.decode(errors="replace").split("=", 1) for entry in entries if b"=" in entry)


def _omp_num_threads():
    """OMP_NUM_THREADS as the user set it, or None. Paddle's import writes OMP_NUM_THREADS=1 into os.environ when it
    is unset, so a 1 that the process was not started with is Paddle's default, not a request."""
    value = os.environ.get("OMP_NUM_THREADS")
    if value is None or (value.strip() == "1" and "OMP_NUM_THREADS" not in _launch_environment()):
        return None
    try:
        threads = int(value.split(",")[0])  # OpenMP allows a per-nesting-level list; the first level is ours
    except ValueError:
        raise ValueError(f"OMP_NUM_THREADS={value!r} is not a number of threads") from None
    if threads < 1:
        raise ValueError(f"OMP_NUM_THREADS={value!r} must be at least 1")
    return threads


def cpu_threads(n: int | None = None) -> int:
    """Math threads to use: `n` if given, else OMP_NUM_THREADS, else every core this process may run on."""
    if n is not None:
        if n < 1:
            raise ValueError(f"the number of CPU threads must be at least 1, got {n}")
        return n
    requested = _omp_num_threads()
    if requested is not None:
        return requested
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))  # respects taskset / container CPU sets, unlike os.cpu_count()
    return os.cpu_count() or 1


def set_cpu_threads(n: int | None = None) -> int:
    """Make Paddle's CPU math (MKL, oneDNN) use `cpu_threads(n)` threads; returns that number.

    paddle.distributed.launch starts its workers with OMP_NUM_THREADS=1 (its own import sets it), so each worker uses
    one thread unless `n` is passed."""
    import paddle

    global _math_threads
    threads = cpu_threads(n)
    paddle.base.core.set_num_threads(threads)
    _math_threads = threads
    return threads


def math_threads() -> int:
    """The threads Paddle's CPU math was last given by `set_cpu_threads` (1 if never): the project's own CPU kernels
    use as many."""
    return _math_threads


def keep_freed_memory(limit_bytes: int = 1 << 30) -> bool:
    """Let glibc serve allocations below `limit_bytes` from its heap and keep up to that much freed memory for reuse.

    Paddle's CPU allocator passes every request to malloc, and in a Paddle process glibc's mmap threshold stays at its
    128 KiB start: each large operator output is a fresh mapping, unmapped when freed, whose pages fault in one by one
    (about 3,000 faults per 12 MB output). Keeping them saves 3-15% of a training step and about 8% of an inference
    forward at batch 8 here; the price is heap fragmentation, which can raise peak RSS by a few percent. Returns
    False (and changes nothing) where malloc is not glibc's."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, TypeError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, limit_bytes)) and bool(mallopt(_M_TRIM_THRESHOLD, limit_bytes))


def cpu_info() -> dict:
    """This CPU's "model" name, "vendor" id and instruction set "flags" (x86's flags, ARM's Features) from
    /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    value = lambda key: next((line.split(":", 1)[1].strip() for line in lines if line.startswith(key)), "")  # noqa: E731
    flags = value("flags") or value("Features")  # x86 says flags, ARM Features
    return {"model": value("model name"), "vendor": value("vendor_id"), "flags": set(flags.split())}


def use_mkl_avx2() -> bool:
    """Ask MKL for its AVX2 code path (MKL_DEBUG_CPU_TYPE=5) on an x86 CPU not made by Intel that has AVX2 and FMA;
    returns whether it did. The MKL in Paddle's x86 builds (2019.0.5) picks its code path by the CPU's vendor, and on
    others takes the slowest one: Paddle's fp32 matmul ran at a third of PyTorch's on an AMD EPYC with AVX2, and about
    at PyTorch's speed with this. MKL reads the variable at its first call, so this must come before the first
    matmul; a value the user set is kept, and newer MKLs ignore it."""
    if "MKL_DEBUG_CPU_TYPE" in os.environ:
        return False
    cpu = cpu_info()
    if cpu["vendor"] in ("", "GenuineIntel") or not {"avx2", "fma"} <= cpu["flags"]:
        return False
    os.environ["MKL_DEBUG_CPU_TYPE"] = "5"
    return True


def configure_cpu(threads: int | None = None) -> int:
    """`use_mkl_avx2()`, `keep_freed_memory()` and `set_cpu_threads(threads)`: what a CPU training or prediction run
    should call once, before its first matmul. Returns the number of threads."""
    use_mkl_avx2()
    keep_freed_memory()
    return set_cpu_threads(threads)
