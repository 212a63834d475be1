"""Every shipped scenario, simulated: its metrics add up, its Perfetto export is
valid Trace Event Format (flows bound to slices), its CSV matches the metrics."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest
from test_export import check_trace_event_format

from sim.export import export_csv, export_perfetto
from sim.kernel import sim_header, simulate
from sim.metrics import MetricsBuilder, metrics_of
from sim.scenario import load_scenario
from sim.trace import TeeSink, TraceWriter

SCENARIOS = sorted((Path(__file__).parent.parent / "scenarios").glob("*.yaml"))


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_shipped_scenario_exports(tmp_path: Path, path: Path) -> None:
    scenario = load_scenario(path)
    header = sim_header(scenario)
    builder = MetricsBuilder(header)
    trace = tmp_path / "t.jsonl"
    with TraceWriter(trace, header) as writer:
        end = simulate(scenario, TeeSink(writer, builder)).end
        writer.close(end)
    m = builder.finish(end)
    assert m == metrics_of(trace)  # streaming while simulating == reading the file

    for tm in m.tasks:
        life_end = tm.terminated_ns if tm.terminated_ns is not None else m.makespan_ns
        assert sum(tm.time_ns.values()) == life_end - tm.created_ns, tm.task
    assert sum(c.busy_ns for c in m.cpus) == sum(tm.time_ns["running"] for tm in m.tasks)
    assert all(0.0 <= c.utilisation <= 1.0 for c in m.cpus)
    assert len(m.cpus) == scenario.machine.cpus

    doc = json.loads(export_perfetto(trace, tmp_path / "t.json").read_text(encoding="utf-8"))
    check_trace_event_format(doc)

    sums: dict[tuple[str, str], int] = defaultdict(int)
    with export_csv(trace, tmp_path / "t.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            sums[(row["task"], row["state"])] += int(row["duration_ns"])
    for tm in m.tasks:
        for state, total in tm.time_ns.items():
            assert sums.get((tm.task, state), 0) == total, (tm.task, state)
