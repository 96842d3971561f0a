"""Processes that end with their parent: DataLoader workers with the trainer, ranks with their launcher."""

import ctypes
import functools
import os
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
# A rank's launcher is the parent it started with: read when the package is first imported (its first import, before
# paddle's), since a launcher killed before the rank asks would leave it asking its new parent (init or a subreaper).
_PARENT_AT_START = os.getppid()


def _die_with(parent_pid: int, init_fn, worker_id: int):
    # The kernel sends SIGKILL when the parent dies; a parent already gone before prctl ran is caught by the ppid test.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)
    if init_fn is not None:
        init_fn(worker_id)


def worker_init_fn(init_fn=None):
    """A DataLoader worker_init_fn that kills the worker when this process dies, then runs `init_fn`."""
    return functools.partial(_die_with, os.getpid(), init_fn)


def exit_with_launcher(interval: float = 1.0):
    """Under `paddle.distributed.launch`, end this rank when the launcher dies.

    The launcher starts each rank in its own session, so nothing else reaches it after a kill -9 of the launcher.
    A thread rather than PR_SET_PDEATHSIG: that signal follows the parent's thread, not its process. The launcher is
    the parent this process had when the package was imported, so a launcher killed in between is noticed too.
    Outside the launcher nothing is watched: a trainer under nohup must outlive its shell."""
    if "PADDLE_LOCAL_RANK" not in os.environ:
        return
    launcher = _PARENT_AT_START

    def watch():
        while os.getppid() == launcher:
            time.sleep(interval)
        rank = os.environ["PADDLE_LOCAL_RANK"]
        print(f"error: the launcher (pid {launcher}) is gone; rank {rank} exits", file=sys.stderr, flush=True)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-launcher", daemon=True).start()
