"""paddlenlp_ext.runtime: the thread count it picks, that Paddle's math library gets it, and the allocator setting."""

import ctypes
import os
import resource

import paddle
import pytest

from paddlenlp_ext import runtime


@pytest.fixture
def launched_with(monkeypatch):
    """Pretend the process was started with the given environment (what /proc/self/environ shows)."""

    def launch(**env):
        monkeypatch.setattr(runtime, "_launch_environment", lambda: dict(env))
        for name, value in env.items():
            monkeypatch.setenv(name, value)

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return launch


def test_explicit_count_wins(launched_with):
    launched_with(OMP_NUM_THREADS="3")
    assert runtime.cpu_threads(5) == 5
    with pytest.raises(ValueError, match="at least 1"):
        runtime.cpu_threads(0)


def test_omp_num_threads_is_respected(launched_with):
    launched_with(OMP_NUM_THREADS="3")
    assert runtime.cpu_threads() == 3
    launched_with(OMP_NUM_THREADS="1")
    assert runtime.cpu_threads() == 1
    launched_with(OMP_NUM_THREADS="2,1")  # per nesting level
    assert runtime.cpu_threads() == 2
    launched_with(OMP_NUM_THREADS="many")
    with pytest.raises(ValueError, match="OMP_NUM_THREADS"):
        runtime.cpu_threads()


def test_default_is_every_usable_core_and_ignores_paddles_own_omp_setting(launched_with, monkeypatch):
    launched_with()
    assert runtime.cpu_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what `import paddle` writes when the variable was unset
    assert runtime.cpu_threads() == len(os.sched_getaffinity(0))


def test_set_cpu_threads_reaches_paddles_math_library():
    library = os.path.join(os.path.dirname(paddle.__file__), "libs", "libmklml_intel.so")
    if not os.path.exists(library):
        pytest.skip("this Paddle build has no MKLML to ask")
    mkl = ctypes.CDLL(library)  # the copy Paddle has loaded
    try:
        assert runtime.set_cpu_threads(2) == 2 and mkl.MKL_Get_Max_Threads() == 2 == runtime.math_threads()
        assert runtime.set_cpu_threads(1) == 1 and mkl.MKL_Get_Max_Threads() == 1 == runtime.math_threads()
    finally:
        runtime.set_cpu_threads(1)  # Paddle's default, for the tests that follow


def test_keep_freed_memory_stops_page_faults_on_reused_outputs():
    assert runtime.keep_freed_memory()
    x = paddle.ones([4 << 20])  # 16 MiB: far above glibc's default mmap threshold
    for _ in range(10):  # the heap grows to hold the product, a page fault per new page, then stays
        x * 2.0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        x * 2.0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 4096, faults  # a fresh mapping per product would fault 5 x 4096 pages


@pytest.mark.parametrize(
    "vendor, flags, asked",
    [
        ("AuthenticAMD", {"sse2", "avx2", "fma"}, True),
        ("HygonGenuine", {"avx2", "fma", "avx512f"}, True),
        ("GenuineIntel", {"avx2", "fma"}, False),  # MKL picks Intel's paths itself
        ("AuthenticAMD", {"sse2", "avx"}, False),  # no AVX2: the AVX2 path would not run
        ("", set(), False),  # not Linux, or no /proc/cpuinfo
    ],
)
def test_mkl_is_asked_for_avx2_on_other_vendors_cpus(monkeypatch, vendor, flags, asked):
    monkeypatch.delenv("MKL_DEBUG_CPU_TYPE", raising=False)
    monkeypatch.setattr(runtime, "cpu_info", lambda: {"model": "", "vendor": vendor, "flags": flags})
    assert runtime.use_mkl_avx2() is asked
    assert os.environ.get("MKL_DEBUG_CPU_TYPE") == ("5" if asked else None)


def test_a_users_mkl_setting_is_kept(monkeypatch):
    monkeypatch.setenv("MKL_DEBUG_CPU_TYPE", "4")
    monkeypatch.setattr(runtime, "cpu_info", lambda: {"model": "", "vendor": "AuthenticAMD", "flags": {"avx2", "fma"}})
    assert runtime.use_mkl_avx2() is False and os.environ["MKL_DEBUG_CPU_TYPE"] == "4"


def test_this_machines_cpu_is_read():
    cpu = runtime.cpu_info()
    if os.path.exists("/proc/cpuinfo") and os.uname().machine == "x86_64":
        assert cpu["vendor"] in ("GenuineIntel", "AuthenticAMD", "HygonGenuine") and "sse2" in cpu["flags"]
        assert cpu["model"]
