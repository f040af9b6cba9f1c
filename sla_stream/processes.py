"""Stopping everything a command started: the signals that mean "stop", and children that die
with their parent.

A closed terminal sends SIGHUP, a process manager SIGTERM, Ctrl-C SIGINT; each must stop the
embedded broker and the workers a command started. And when the command itself is killed
(SIGKILL, a crash), Linux's PR_SET_PDEATHSIG signals its children, so no broker or worker lives on.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def stop_on_signals() -> None:
    """Make SIGTERM and SIGHUP raise KeyboardInterrupt as SIGINT does, so the `finally` blocks and
    context managers that stop a command's children run whichever signal stopped it."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> Callable[[], None] | None:
    """A `subprocess.Popen(preexec_fn=...)` that has the child receive `sig` when this process
    dies; None where the kernel offers no such thing (not Linux). The kernel watches the thread
    that started the child: start children from the main thread, not from one that ends."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec: no allocation-heavy work
        libc.prctl(PR_SET_PDEATHSIG, int(sig))
        if os.getppid() != parent:  # the parent died before the call: nobody would signal us
            os.kill(os.getpid(), sig)

    return preexec
