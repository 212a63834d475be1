"""`procsim trace` on programs written as users write them (not scenarios)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sim.real import trace_program
from sim.trace import (
    JobEvent,
    MessageEvent,
    OutputEvent,
    TaskCreated,
    WarningEvent,
)
from tests.real_checks import kernel_missing, load_checked, stray_children, terminations

pytestmark = pytest.mark.real
PROGRAMS = Path(__file__).resolve().parent / "data" / "real"


def _kernel() -> str:
    return "off" if kernel_missing() else "on"


def test_a_process_pool_executor_program(tmp_path: Path) -> None:
    out = tmp_path / "ppe.jsonl"
    result = trace_program([sys.executable, str(PROGRAMS / "ppe_program.py")], out,
                           kernel=_kernel(), timeout_s=60)  # fmt: skip
    assert result.exit_code == 0 and result.end.status == "complete"
    trace = load_checked(out)
    ends = terminations(trace)
    workers = [e for e in trace.events if isinstance(e, TaskCreated) and e.kind == "child"]
    assert len(workers) == 2 and all(ends[w.task].exit_code == 0 for w in workers)
    assert [e.text for e in trace.events if isinstance(e, OutputEvent)] == ["55"]
    # The executor's call queue carries the work to the workers: every get has its put.
    gets = [e for e in trace.events if isinstance(e, MessageEvent) and e.op == "get"]
    assert gets and {e.obj for e in gets} >= {"_call_queue"}
    assert ends["main"].exit_code == 0 and stray_children() == []


def test_a_daemon_program(tmp_path: Path) -> None:
    out = tmp_path / "daemon.jsonl"
    result = trace_program([sys.executable, str(PROGRAMS / "daemon_program.py")], out,
                           kernel=_kernel(), timeout_s=60)  # fmt: skip
    assert result.exit_code == 0
    trace = load_checked(out)
    ends = terminations(trace)
    assert (ends["forever"].exit_code, ends["forever"].cause) == (-15, "killed_as_daemon")
    assert (ends["finisher"].exit_code, ends["finisher"].cause) == (0, "returned")
    assert ends["forever"].t < ends["finisher"].t <= ends["main"].t
    texts = {(e.task, e.text) for e in trace.events if isinstance(e, OutputEvent)}
    assert texts == {("main", "main code done"), ("finisher", "finisher done")}
    assert trace.header.notes["argv"][-1].endswith("daemon_program.py")


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_names_and_exit_codes_under_every_start_method(method: str, tmp_path: Path) -> None:
    out = tmp_path / f"ends-{method}.jsonl"
    argv = [sys.executable, str(PROGRAMS / "ends_program.py"), method]
    result = trace_program(argv, out, kernel="off", timeout_s=90)
    assert result.exit_code == 0
    trace = load_checked(out)
    assert trace.header.machine["start_method"] == method
    ends = {task: (e.exit_code, e.cause) for task, e in terminations(trace).items()}
    assert ends["dup"] == ends["dup#2"] == (0, "returned")
    assert ends["raiser"] == (1, "exception")
    assert ends["exiter"] == (3, "exit")
    assert ends["crasher"] == (-9, "crashed")
    # Killed before it could record anything (surely under spawn and forkserver):
    # its parent's record of its start, written as it collected its exit, names it.
    assert ends["stillborn"] == (-9, "terminated")
    created = {e.task: e for e in trace.events if isinstance(e, TaskCreated)}
    assert (created["stillborn"].parent, created["stillborn"].kind) == ("main", "child")
    assert ends["unjoined"] == (-9, "crashed")  # collected by is_alive() alone
    warnings = [e for e in trace.events if isinstance(e, WarningEvent) and e.kind == "exception"]
    assert [(w.task, w.text) for w in warnings] == [
        ("raiser", "ValueError: bad input (exit code 1)")
    ]
    prefix = {"fork": "ForkPoolWorker-", "spawn": "SpawnPoolWorker-",
              "forkserver": "ForkServerPoolWorker-"}[method]  # fmt: skip
    workers = [e.task for e in trace.events if isinstance(e, TaskCreated) and e.kind == "worker"]
    assert len(workers) == 2 and all(w.startswith(prefix) for w in workers)
    jobs = [e for e in trace.events if isinstance(e, JobEvent)]
    assert {e.pool for e in jobs} == {"pool"}  # named after `with ctx.Pool(2) as pool`
    assert {e.task for e in jobs if e.op == "start"} <= set(workers)
    handlers = {e.task for e in trace.events if isinstance(e, TaskCreated) and e.kind == "handler"}
    assert handlers == {
        f"main.pool.{r}" for r in ("worker_handler", "task_handler", "result_handler")
    }
    assert stray_children() == []


def test_pool_workers_forked_inside_pool_record_their_own_objects(tmp_path: Path) -> None:
    # Pool() forks its workers from inside a probe of its own, whose state the
    # workers inherit with the fork and must not keep: a Pipe a worker makes
    # is the program's, named and recorded.
    out = tmp_path / "pool_pipe.jsonl"
    result = trace_program([sys.executable, str(PROGRAMS / "pool_pipe_program.py")], out,
                           kernel="off", timeout_s=60)  # fmt: skip
    assert result.exit_code == 0
    trace = load_checked(out)
    workers = {e.task for e in trace.events if isinstance(e, TaskCreated) and e.kind == "worker"}
    assert len(workers) == 2
    # Which worker runs which of the two jobs is the kernel's choice.
    talks = sorted((e.op, e.obj) for e in trace.events if isinstance(e, MessageEvent))
    assert talks == [("recv", "there")] * 2 + [("send", "here")] * 2
    assert {e.task for e in trace.events if isinstance(e, MessageEvent)} <= workers
