"""Issue 2's performance targets for the simulator core, measured in one run.

1. Cost per scheduling event against a bare SimPy timeout event: a CPU-bound
   scenario of 100,000 compute steps (8 processes on 4 CPUs, round robin with a
   10 ms quantum; each step 1 ms, so a tenth of them end in a quantum expiry and
   a switch). The model's time per compute step over a bare SimPy loop's time per
   timeout, median of 7 interleaved runs. Target: at most 3x.

Times are the process's CPU time (time.process_time), not wall time: the
machines are shared, and another process taking the CPU lengthens wall time but
not the CPU time this one used.
2. Linear growth: time per step at 10,000, 100,000 and 1,000,000 steps. Target:
   1,000,000 within 15% of 100x the 10,000-step time.
3. Memory: 1,000,000 steps while writing the trace to disk, peak RSS of a fresh
   process. Target: under 200 MB.

Run: python benchmarks/bench_kernel.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import simpy

from sim import program as p
from sim.kernel import simulate
from sim.trace import Event

MS = 1_000_000


class DiscardingSink:
    def emit(self, event: Event) -> None:
        pass


def cpu_bound(steps: int, processes: int = 8) -> p.Scenario:
    per_process = steps // processes
    spin = p.FunctionDef(
        "spin", (p.Repeat(times=per_process, body=(p.Compute(duration=p.Constant(MS)),)),)
    )
    names = tuple(f"p{i}" for i in range(processes))
    main = (*(p.Spawn(name=n, target="spin") for n in names), p.Join(names=names))
    machine = p.Machine(cpus=4, policy="rr", settings=p.PolicySettings(quantum_ns=10 * MS))
    return p.Scenario("cpu-bound", "", 0, machine, {}, {"spin": spin}, main)


def bare_timeouts(n: int) -> float:
    env = simpy.Environment()

    def loop() -> simpy.events.ProcessGenerator:
        for _ in range(n):
            yield env.timeout(1)

    env.process(loop())
    start = time.process_time()
    env.run()
    return time.process_time() - start


def model_time(steps: int) -> float:
    scenario = cpu_bound(steps)
    start = time.process_time()
    simulate(scenario, DiscardingSink())
    return time.process_time() - start


PEAK_RSS_CHILD = """
import resource, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from benchmarks.bench_kernel import cpu_bound
from sim.kernel import sim_header, simulate
from sim.trace import TraceWriter
scenario = cpu_bound(1_000_000)
with TraceWriter(Path({out!r}), sim_header(scenario)) as writer:
    result = simulate(scenario, writer)
    writer.close(result.end)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_writing_trace() -> tuple[float, float, int]:
    root = str(Path(__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "trace.jsonl")
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", PEAK_RSS_CHILD.format(root=root, out=out)],
            check=True,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - start
        size = Path(out).stat().st_size
    return int(done.stdout.strip()) / 1024, elapsed, size


def main() -> None:
    steps = 100_000
    ratios = []
    for _ in range(7):
        bare = bare_timeouts(steps) / steps
        model = model_time(steps) / steps
        ratios.append(model / bare)
    ratio = statistics.median(ratios)
    print(
        f"1. cost per compute step / bare SimPy timeout: median {ratio:.2f}x "
        f"(runs: {', '.join(f'{r:.2f}' for r in ratios)}) -> target <= 3x: "
        f"{'met' if ratio <= 3 else 'NOT met'}"
    )

    per_step = {}
    for n in (10_000, 100_000, 1_000_000):
        times = [model_time(n) for _ in range(max(1, 300_000 // n))]
        per_step[n] = statistics.median(times) / n
        print(
            f"   {n:>9,} steps: {statistics.median(times):7.3f} s, {per_step[n] * 1e6:.2f} us/step"
        )
    growth = per_step[1_000_000] / per_step[10_000]
    verdict = "met" if abs(growth - 1) <= 0.15 else "NOT met"
    print(
        f"2. time per step at 1,000,000 / at 10,000 steps: {growth:.2f} "
        f"(linear = 1.00) -> target within 15%: {verdict}"
    )

    rss_mb, elapsed, size = peak_rss_writing_trace()
    print(
        f"3. 1,000,000 steps writing the trace ({size / 1e6:.0f} MB on disk, {elapsed:.1f} s): "
        f"peak RSS {rss_mb:.0f} MB -> target < 200 MB: {'met' if rss_mb < 200 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
