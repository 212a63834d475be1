"""Ending every process of a run, and only those.

A run's processes are the root's descendants plus any process whose
environment carries the run's id (an orphan of a parent that died is
re-parented away from the root but keeps the variable). They are all stopped
first (SIGSTOP), so none can fork while the others die, then killed
(SIGKILL), until no live one is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

import psutil

from sim.real.runtime.recorder import RUN_ENV


def run_processes(root_pid: int | None, run_id: str) -> list[psutil.Process]:
    """The live (not zombie) processes of the run."""
    found: dict[int, psutil.Process] = {}
    me = os.getpid()
    if root_pid is not None:
        try:
            root = psutil.Process(root_pid)
            found[root.pid] = root
            for child in root.children(recursive=True):
                found[child.pid] = child
        except psutil.Error:
            pass
    for proc in psutil.process_iter():
        if proc.pid in found or proc.pid == me:
            continue
        try:
            if proc.environ().get(RUN_ENV) == run_id:
                found[proc.pid] = proc
        except (psutil.Error, OSError):
            continue
    live: list[psutil.Process] = []
    for proc in found.values():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                live.append(proc)
        except psutil.Error:
            continue
    return live


def _signal_all(procs: list[psutil.Process], sig: int) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def kill_run(root_pid: int | None, run_id: str, timeout_s: float = 10.0) -> int:
    """Kill every process of the run; the number killed."""
    killed: set[int] = set()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        procs = run_processes(root_pid, run_id)
        if not procs:
            break
        _signal_all(procs, signal.SIGSTOP)
        _signal_all(procs, signal.SIGKILL)
        killed.update(p.pid for p in procs)
        psutil.wait_procs(procs, timeout=0.5)
    return len(killed)


def wait_for_run(root_pid: int | None, run_id: str, timeout_s: float) -> bool:
    """Wait until no process of the run is left; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while run_processes(root_pid, run_id):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True
