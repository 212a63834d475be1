"""Trace consumers stream: peak memory of metrics and exports does not grow with
the number of events, and time grows linearly.

Writes a synthetic round-robin trace (TASKS tasks on CPUS CPUs, each slice a
dispatch and a preemption, a message every few slices) of N/10 and N events,
then measures `metrics_of`, `export_csv` and `export_perfetto` on both: peak
Python heap (tracemalloc, in its own pass) and wall time (a pass without
tracemalloc). Prints the figures and the large/small ratios: memory ≈ 1×,
time ≈ 10× for linear.

    python benchmarks/trace_streaming.py [--events 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path

from sim.export import export_csv, export_perfetto
from sim.metrics import metrics_of
from sim.trace import End, Header, MessageEvent, StateChanged, TaskCreated, TraceWriter

TASKS = 50
CPUS = 4
SLICE_NS = 1_000_000


def write_synthetic(path: Path, n_events: int) -> None:
    header = Header("bench", "sim", {"cpus": CPUS, "policy": "rr"}, 0, "bench", "3", "simulated")
    with TraceWriter(path, header) as w:
        for i in range(TASKS):
            w.emit(TaskCreated(0, f"t{i}", "child", f"t{i}"))
            w.emit(StateChanged(0, f"t{i}", "ready"))
        written, k, t, msg = 2 * TASKS, 0, 0, 0
        while written < n_events:
            task = f"t{k % TASKS}"
            w.emit(StateChanged(t, task, "running", cpu=k % CPUS))
            if k % 5 == 0:
                msg += 1
                w.emit(MessageEvent(t, task, "put" if msg % 2 else "get", "q", (msg + 1) // 2))
                written += 1
            t += SLICE_NS // CPUS
            w.emit(StateChanged(t, task, "ready"))
            written += 2
            k += 1
        w.close(End(t, "interrupted"))


def peak_bytes(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    sizes = (args.events // 10, args.events)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        results: dict[str, list[tuple[int, float]]] = {}
        for n in sizes:
            trace = tmp / f"t{n}.jsonl"
            write_synthetic(trace, n)
            jobs: dict[str, Callable[[], object]] = {
                "metrics_of": partial(metrics_of, trace),
                "export_csv": partial(export_csv, trace, tmp / "o.csv"),
                "export_perfetto": partial(export_perfetto, trace, tmp / "o.json"),
            }
            mib = trace.stat().st_size / 2**20
            print(f"{n:>9,} events, trace {mib:.1f} MiB")
            for name, job in jobs.items():
                mem, sec = peak_bytes(job), seconds(job)
                results.setdefault(name, []).append((mem, sec))
                print(f"  {name:<16} peak heap {mem / 2**20:7.2f} MiB   {sec:7.2f} s")
    print(f"ratios, {sizes[1]:,} vs {sizes[0]:,} events (streaming: memory ≈ 1, time ≈ 10):")
    for name, ((mem_s, sec_s), (mem_l, sec_l)) in results.items():
        print(f"  {name:<16} memory {mem_l / mem_s:5.2f}x   time {sec_l / sec_s:5.2f}x")


if __name__ == "__main__":
    main()
