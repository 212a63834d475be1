"""Issue 6's performance targets for the window and the renderer, measured in one run.

Workloads, both simulated now:
- "200 tasks": 199 processes that each compute 1 ms and sleep 2 ms, 170 times,
  under round robin on 2 CPUs: 200 tasks on the stage (a long ready queue, a
  long `sleep` lane) and a little over 100,000 events.
- "pool 10,000": the reference text's Pool(4) with 10,000 apply_async calls
  (scenarios/reference_pool_apply_async.yaml), about 130,000 events; and the
  same with a pool of 64 workers.

1. Frame time at 1280x720 while playing (consecutive frames at 60 fps, speed
   chosen to play the trace in 12 s): median and 95th percentile, everything
   drawn (stage, log, timeline). Target: median under 16.7 ms.
2. Seek: the playhead jumps to a random time and the frame there is drawn.
   Target: median under 50 ms.
3. Headless rendering: frames per second of `Renderer.frame` (draw and read the
   pixels back), before any encoding. Target: at least 100.

Run: python benchmarks/bench_viz.py
"""

from __future__ import annotations

import dataclasses
import os
import random
import statistics
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")

import pygame

from sim import program as p
from sim.kernel import sim_header, simulate
from sim.scenario import load_scenario
from sim.trace import MemorySink, Trace
from viz import cursor
from viz.frame import Composer, FrameSpec
from viz.index import TraceIndex
from viz.render import Renderer, headless
from viz.speed import auto_speed

MS = 1_000_000
SIZE = (1280, 720)
FRAMES = 300
SEEKS = 60
ROOT = Path(__file__).resolve().parent.parent


def _trace(scenario: p.Scenario) -> Trace:
    sink = MemorySink()
    result = simulate(scenario, sink)
    return Trace(sim_header(scenario), tuple(sink.events), result.end)


def two_hundred_tasks() -> Trace:
    body = (p.Compute(duration=p.Constant(MS)), p.Sleep(duration=p.Constant(2 * MS)))
    work = p.FunctionDef("work", (p.Repeat(times=170, body=body),))
    names = tuple(f"p{i}" for i in range(199))
    main = (*(p.Spawn(name=n, target="work") for n in names), p.Join(names=names))
    machine = p.Machine(cpus=2, policy="rr", settings=p.PolicySettings(quantum_ns=10 * MS))
    return _trace(p.Scenario("200-tasks", "", 0, machine, {}, {"work": work}, main))


def pool_10000(workers: int = 4) -> Trace:
    scenario = load_scenario(ROOT / "scenarios" / "reference_pool_apply_async.yaml")
    pool = scenario.objects["p"]
    assert isinstance(pool, p.PoolDef)
    objects = {**scenario.objects, "p": dataclasses.replace(pool, workers=workers)}
    return _trace(dataclasses.replace(scenario, objects=objects))


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def bench(name: str, trace: Trace) -> None:
    start = time.perf_counter()
    ix = TraceIndex(trace)
    built = time.perf_counter() - start
    indexes = [ix]
    composer = Composer(indexes, ["simulated"])
    surface = pygame.Surface(SIZE)
    speed = auto_speed(ix.end_t)
    on_stage = len(ix.tracks)
    print(
        f"\n{name}: {len(trace.events):,} events, {on_stage} tasks, {ix.end_t / MS:.1f} ms "
        f"of trace; index built in {_ms(built)}"
    )

    # 1. Playing: consecutive frames from a third of the way in.
    step = round(speed * 1e9 / 60)
    t0 = ix.end_t // 3
    composer.compose(surface, FrameSpec(cursor.at_time(indexes, t0), speed))  # warm the caches
    times = []
    for i in range(FRAMES):
        begin = time.perf_counter()
        cur = cursor.at_time(indexes, t0 + i * step)
        composer.compose(surface, FrameSpec(cur, speed, playing=True))
        times.append(time.perf_counter() - begin)
    median = statistics.median(times)
    p95 = statistics.quantiles(times, n=20)[-1]
    print(
        f"  frame while playing: median {_ms(median)}, p95 {_ms(p95)}; "
        f"target 16.7 ms -> {median / 0.0167:.2f} of the budget"
    )

    # 2. Seeking to random times.
    rng = random.Random(6)
    seeks = []
    for _ in range(SEEKS):
        t = rng.randrange(ix.end_t)
        begin = time.perf_counter()
        composer.compose(surface, FrameSpec(cursor.at_time(indexes, t), speed))
        seeks.append(time.perf_counter() - begin)
    median = statistics.median(seeks)
    print(
        f"  seek and draw: median {_ms(median)}, max {_ms(max(seeks))}; "
        f"target 50 ms -> {median / 0.050:.2f} of the budget"
    )

    # 3. Headless frames per second, pixels read back, no encoding.
    renderer = Renderer([trace], ["simulated"], SIZE, speed, 30)
    renderer.frame(t0)
    begin = time.perf_counter()
    for i in range(FRAMES):
        renderer.frame(t0 + i * round(speed * 1e9 / 30))
    fps = FRAMES / (time.perf_counter() - begin)
    print(f"  headless rendering: {fps:.0f} frames/s; target 100 -> {fps / 100:.2f}x")


def main() -> None:
    headless()
    bench("200 tasks", two_hundred_tasks())
    bench("pool 10,000", pool_10000())
    bench("pool of 64 workers, 10,000 tasks", pool_10000(workers=64))


if __name__ == "__main__":
    main()
