"""Real-run machinery without real processes: the record format, perf's output,
the kernel states and their gaps, and the merge of synthetic records."""

from __future__ import annotations

import itertools
import os
import resource
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.real.kernel_trace import SchedEvent, parse_perf_script, timelines
from sim.real.merge import RunFacts, merge
from sim.real.records import Record, RecordTail, read_records
from sim.real.runtime.recorder import (
    SHARED_FD_MIN,
    SHARED_NAME,
    SHARED_RECORDS,
    Recorder,
    escape,
    unescape,
)
from sim.trace import JobEvent, MessageEvent, OutputEvent, StateChanged, TaskCreated, Trace
from tests.real_checks import structure_problems

# --- the record file -----------------------------------------------------------------


@given(st.text())
def test_escape_round_trips_and_leaves_no_separator(text: str) -> None:
    escaped = escape(text)
    assert "\t" not in escaped and "\n" not in escaped and "\r" not in escaped
    assert unescape(escaped) == text


def test_recorder_writes_complete_records_and_grows(tmp_path: Path) -> None:
    rec = Recorder(str(tmp_path))
    rec.emit("X", "ignored before activation")
    assert list(tmp_path.glob("*.rec")) == []
    rec.activate()
    rec.emit("X", escape("a\tline"))
    for i in range(40_000):  # past the first megabyte: the mapping must grow
        rec.line(f"J\tstart\t\t{i}\t0\t")
    records = read_records(tmp_path)
    assert records[0].kind == "X" and records[0].text(0) == "a\tline"
    assert [r.fields[2] for r in records[1:]] == [str(i) for i in range(40_000)]
    assert all(r.t <= s.t for r, s in itertools.pairwise(records))


def test_a_torn_last_record_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "123-1.rec"
    path.write_bytes(b"10\t123\tP\t123\t1\troot\tmain\t0\n20\t123\tX\thal" + b"\0" * 64)
    records = read_records(tmp_path)
    assert [r.kind for r in records] == ["P"]
    assert records[0].pid == 123


def _in_a_fork_child(work: Callable[[], None]) -> None:
    """Run `work` in a forked child (which inherits the recorder as a fork
    child of a traced program does) and wait for it."""
    pid = os.fork()
    if pid == 0:
        try:
            work()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def test_a_child_with_a_few_records_makes_no_file(tmp_path: Path) -> None:
    rec = Recorder(str(tmp_path))
    rec.activate()

    def child() -> None:
        rec.begin_task("P\t1\t2\tchild\tc\t0")
        rec.end_task("Z\t0\treturned")
        rec.line("C\t5\t6")

    _in_a_fork_child(child)
    assert len(list(tmp_path.glob("*.rec"))) == 1  # the parent's
    records = read_records(tmp_path)
    child_pid = next(r.pid for r in records if r.kind == "P")
    assert child_pid != os.getpid()
    assert [r.kind for r in records] == ["P", "Z", "C"]
    assert {r.pid for r in records} == {child_pid}
    assert records[0].tid == child_pid  # a fork child's only thread


def test_a_childs_record_past_the_shared_ones_makes_its_file(tmp_path: Path) -> None:
    rec = Recorder(str(tmp_path))
    count = SHARED_RECORDS + 3

    def child() -> None:
        rec.begin_task("P\t1\t2\tchild\tc\t0")
        for i in range(1, count):
            rec.line(f"X\t{i}")

    _in_a_fork_child(child)
    files = list(tmp_path.glob("*.rec"))
    assert len(files) == 1
    records = read_records(tmp_path)
    assert [r.kind for r in records] == ["P"] + ["X"] * (count - 1)
    assert [r.text(0) for r in records[1:]] == [str(i) for i in range(1, count)]
    assert {r.pid for r in records} == {int(files[0].name.split("-")[0])}
    shared = (tmp_path / SHARED_NAME).read_text().splitlines()
    assert len(shared) == SHARED_RECORDS
    assert all(line.split("\t")[0] == str(records[0].pid) for line in shared)


def test_a_child_makes_its_file_before_it_starts_a_thread(tmp_path: Path) -> None:
    rec = Recorder(str(tmp_path))

    def child() -> None:
        rec.begin_task("P\t1\t2\tchild\tc\t0")
        rec.ensure_file()  # as Thread.start does, before the thread can record
        rec.line("X\tafter")

    _in_a_fork_child(child)
    assert len(list(tmp_path.glob("*.rec"))) == 1
    assert [r.kind for r in read_records(tmp_path)] == ["P", "X"]
    assert "\tX\t" not in (tmp_path / SHARED_NAME).read_text()


def _descriptor_of(path: Path) -> int:
    """This process's descriptor open on `path` (Linux: /proc/self/fd)."""
    for entry in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{entry}") == str(path):
                return int(entry)
        except OSError:
            continue
    raise AssertionError(f"{path} is not open")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc/self/fd")
@pytest.mark.skipif(
    resource.getrlimit(resource.RLIMIT_NOFILE)[0] <= SHARED_FD_MIN,
    reason=f"needs a descriptor limit above {SHARED_FD_MIN}",
)
def test_the_shared_descriptor_is_where_a_program_does_not_reuse_it(tmp_path: Path) -> None:
    """The kernel gives a new descriptor the lowest free number: a program that
    closes ours and opens files of its own does not get its number."""
    Recorder(str(tmp_path))
    assert _descriptor_of(tmp_path / SHARED_NAME) >= SHARED_FD_MIN


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc/self/fd")
def test_a_closed_shared_descriptor_makes_the_child_use_its_own_file(tmp_path: Path) -> None:
    rec = Recorder(str(tmp_path))

    def child() -> None:
        rec.begin_task("P\t1\t2\tchild\tc\t0")
        os.close(_descriptor_of(tmp_path / SHARED_NAME))  # the program's code
        rec.end_task("Z\t0\treturned")

    _in_a_fork_child(child)
    assert [r.kind for r in read_records(tmp_path)] == ["P", "Z"]
    assert len(list(tmp_path.glob("*.rec"))) == 1  # Z went to the child's own file


def test_tail_returns_only_new_complete_records(tmp_path: Path) -> None:
    rec = Recorder(str(tmp_path))
    rec.activate()
    tail = RecordTail(tmp_path)
    rec.line("X\tone")
    assert [r.text(0) for r in tail.poll()] == ["one"]
    assert tail.poll() == []
    rec.line("X\ttwo")
    rec.line("X\tthree")
    assert [r.text(0) for r in tail.poll()] == ["two", "three"]


# --- perf output and kernel states -------------------------------------------------------

PERF = [
    " 4212/4212  [000]   360.000001000:       sched:sched_switch: prev_comm=a b prev_pid=4212"
    " prev_prio=120 prev_state=S ==> next_comm=python next_pid=7 next_prio=120",
    "    7/7     [000]   360.000002500: sched:sched_stat_runtime: comm=py pid=7 runtime=1500 [ns]",
    "    0/0     [001]   360.000003000:       sched:sched_waking: comm=py pid=8 prio=120"
    " target_cpu=001",
    "    7/7     [000]   360.000004000: sched:sched_process_fork: comm=py pid=7 child_comm=py"
    " child_pid=9",
    "    9/9     [001]   360.000005000: sched:sched_process_exit: comm=py pid=9 prio=120"
    " group_dead=true",
    " not a sched line",
]


def test_perf_script_lines_become_events() -> None:
    events = list(parse_perf_script(PERF))
    assert events == [
        SchedEvent(360_000_001_000, 0, 4212, "switch", 4212, 7, "S"),
        SchedEvent(360_000_002_500, 0, 7, "runtime", 7, 1500),
        SchedEvent(360_000_003_000, 1, 0, "waking", 8),
        SchedEvent(360_000_004_000, 0, 7, "fork", 7, 9),
        SchedEvent(360_000_005_000, 1, 9, "exit", 9),
    ]


def _switch(t: int, cpu: int, prev: int, nxt: int, state: str = "S") -> SchedEvent:
    return SchedEvent(t, cpu, prev, "switch", prev, nxt, state)


def test_switches_give_running_ready_blocked_and_terminated() -> None:
    events = [
        SchedEvent(0, 0, 1, "new", 5),
        _switch(10, 0, 0, 5, "R"),
        _switch(20, 0, 5, 6, "R+"),  # preempted: ready
        _switch(30, 0, 6, 5, "S"),
        _switch(40, 0, 5, 0, "S"),  # asleep: blocked
        SchedEvent(50, 1, 0, "waking", 5),
        _switch(60, 1, 0, 5, "R"),
        SchedEvent(70, 1, 5, "exit", 5),
        _switch(80, 1, 5, 0, "Z"),
    ]
    states = timelines(events, {5}).states[5]
    assert [(s.t, s.state, s.cpu) for s in states] == [
        (0, "ready", None),
        (10, "running", 0),
        (20, "ready", None),
        (30, "running", 0),
        (40, "blocked", None),
        (50, "ready", None),
        (60, "running", 1),
        (80, "terminated", None),
    ]
    assert not any(s.uncertain for s in states)


def test_a_lost_switch_in_is_uncertain_and_starts_at_the_earliest_time() -> None:
    # cpu 1 switches to idle at 10; the switch from idle to task 5 is missing.
    events = [
        _switch(10, 1, 3, 0, "S"),
        SchedEvent(20, 0, 0, "waking", 5),
        _switch(50, 1, 5, 0, "S"),  # 5 switched out: it was running since >= 20
    ]
    tl = timelines(events, {5})
    assert [(s.t, s.state, s.uncertain) for s in tl.states[5]] == [
        (20, "ready", False),
        (20, "running", True),
        (50, "blocked", False),
    ]
    assert len(tl.gaps) == 1 and tl.gaps[0].expected == 0 and tl.gaps[0].found == 5


def test_a_runtime_event_places_a_lost_switch_in() -> None:
    events = [
        _switch(10, 1, 3, 0, "S"),
        SchedEvent(20, 0, 0, "waking", 5),
        SchedEvent(45, 1, 5, "runtime", 5, 15),  # it has run 15 ns: since 30
        _switch(50, 1, 5, 0, "S"),
    ]
    running = [s for s in timelines(events, {5}).states[5] if s.state == "running"]
    assert [(s.t, s.uncertain) for s in running] == [(30, True)]


def test_a_runtime_event_on_another_cpu_places_a_lost_switch_in() -> None:
    # Task 5 is woken onto idle cpu 1 at 20 and runs from there; the switch in is
    # lost (as on this VM's second CPU). A fork on cpu 0 accounts its runtime so
    # far (10 ns, so since 21) before its own CPU's accounting at 45.
    events = [
        _switch(10, 1, 3, 0, "S"),
        SchedEvent(20, 0, 0, "new", 5),
        SchedEvent(31, 0, 4, "runtime", 5, 10),
        SchedEvent(45, 1, 5, "runtime", 5, 14),
        _switch(50, 1, 5, 0, "S"),
    ]
    running = [s for s in timelines(events, {5}).states[5] if s.state == "running"]
    assert [(s.t, s.uncertain) for s in running] == [(21, True)]


def test_a_runtime_event_places_the_task_running_before_its_switch_out() -> None:
    # 5 blocks on cpu 1 at 10 and is woken at 20; its switch in at 30 is lost.
    # Its runtime event at 36 (6 ns since 30), fired while it is cpu 1's current
    # task, places it running from 30 at once: the wake-up of 5 at 40 (another
    # thread waking it while it runs, a no-op for the kernel) leaves it running.
    events = [
        _switch(5, 1, 0, 5, "R"),
        _switch(10, 1, 5, 0, "S"),
        SchedEvent(20, 0, 6, "waking", 5),
        SchedEvent(33, 1, 5, "waking", 7),
        SchedEvent(36, 1, 5, "runtime", 5, 6),
        SchedEvent(40, 0, 6, "waking", 5),
        _switch(50, 1, 5, 0, "S"),
    ]
    tl = timelines(events, {5})
    assert [(s.t, s.state, s.cpu, s.uncertain) for s in tl.states[5]] == [
        (5, "running", 1, False),
        (10, "blocked", None, False),
        (20, "ready", None, False),
        (30, "running", 1, True),
        (50, "blocked", None, False),
    ]
    assert [(g.cpu, g.start, g.end, g.expected, g.found) for g in tl.gaps] == [(1, 10, 36, 0, 5)]


def test_a_wake_up_seen_before_the_runtime_event_is_undone() -> None:
    # As above, but the wake-up of the running task comes before its first
    # runtime event: it did not happen.
    events = [
        _switch(5, 1, 0, 5, "R"),
        _switch(10, 1, 5, 0, "S"),
        SchedEvent(32, 0, 6, "waking", 5),
        SchedEvent(36, 1, 5, "runtime", 5, 6),
        _switch(50, 1, 5, 0, "S"),
    ]
    states = timelines(events, {5}).states[5]
    assert [(s.t, s.state, s.uncertain) for s in states] == [
        (5, "running", False),
        (10, "blocked", False),
        (30, "running", True),
        (50, "blocked", False),
    ]


def test_a_runtime_event_before_the_last_switch_places_nothing() -> None:
    # 5 ran on cpu 1 (seen) and blocked; woken again, its next switch in is lost:
    # the runtime event of its earlier run says nothing about the later one.
    events = [
        _switch(10, 1, 0, 5, "R"),
        SchedEvent(15, 0, 4, "runtime", 5, 5),
        _switch(20, 1, 5, 0, "S"),
        SchedEvent(30, 0, 0, "waking", 5),
        SchedEvent(44, 1, 5, "runtime", 5, 4),
        _switch(50, 1, 5, 0, "S"),
    ]
    running = [s for s in timelines(events, {5}).states[5] if s.state == "running"]
    assert [(s.t, s.uncertain) for s in running] == [(10, False), (40, True)]


def test_a_lost_switch_out_ends_the_task_before_the_next_one_runs() -> None:
    # 5 runs on cpu 0 from 10; its switch out is lost; 6 is seen switched out at 50.
    events = [
        _switch(10, 0, 0, 5, "R"),
        SchedEvent(15, 0, 5, "waking", 8),  # 5 is seen running at 15
        SchedEvent(30, 1, 0, "waking", 6),
        _switch(50, 0, 6, 0, "S"),
        SchedEvent(70, 1, 0, "waking", 5),
    ]
    tl = timelines(events, {5, 6})
    five = [(s.t, s.state, s.uncertain) for s in tl.states[5]]
    six = [(s.t, s.state, s.uncertain) for s in tl.states[6]]
    assert five == [(10, "running", False), (15, "blocked", True), (70, "ready", False)]
    assert six == [(30, "ready", False), (30, "running", True), (50, "blocked", False)]


# --- merging ---------------------------------------------------------------------------


def _rec(t: int, pid: int, tid: int, kind: str, *fields: object) -> Record:
    return Record(t, pid, tid, kind, tuple(str(f) for f in fields))


def _facts(end_t: int = 1000) -> RunFacts:
    return RunFacts(
        root_pid=1, t0=0, end_t=end_t, status="complete", root_exit=0, root_exit_t=end_t
    )


def _trace(records: list[Record], facts: RunFacts | None = None) -> Trace:
    from sim.trace import Header

    merged = merge(sorted(records, key=lambda r: r.t), facts or _facts(), None)
    header = Header("t", "real", {}, 0, "0", "3.11", "CLOCK_MONOTONIC 0 ns")
    return Trace(header, tuple(merged.events), merged.end)


def test_probe_states_names_and_exit_causes() -> None:
    records = [
        _rec(0, 1, 1, "P", 1, 0, "root", "main", 0),
        _rec(0, 1, 1, "O", "queue", "p9r", "p9w", "jobs", 0, 0, "hr", "hw"),
        _rec(10, 1, 1, "S", 2, "worker", 0),
        _rec(11, 1, 1, "S", 3, "worker", 1),
        _rec(20, 2, 2, "P", 2, 1, "child", "worker", 0),
        _rec(21, 3, 3, "P", 3, 1, "child", "worker", 1),
        _rec(30, 2, 2, "B", "get", "p9r", 0),
        _rec(40, 1, 1, "B", "join", 2, 0),
        _rec(50, 2, 2, "E"),
        _rec(60, 2, 2, "Z", 1, "exception"),
        _rec(61, 1, 1, "R", 2, 1),
        _rec(62, 1, 1, "E"),
        _rec(63, 1, 1, "K", 3, 15, "daemon"),
        _rec(64, 1, 1, "R", 3, -15),
    ]
    trace = _trace(records)
    assert structure_problems(trace) == []
    created = {e.task: e for e in trace.events if isinstance(e, TaskCreated)}
    assert set(created) == {"main", "worker", "worker#2"}
    assert created["worker"].parent == "main" and created["worker#2"].daemon
    states = [(e.task, e.state, e.reason) for e in trace.events if isinstance(e, StateChanged)]
    assert ("worker", "blocked", "jobs.get") in states
    assert ("main", "blocked", "join worker") in states
    ends = {e.task: (e.exit_code, e.cause) for e in trace.events
            if isinstance(e, StateChanged) and e.state == "terminated"}  # fmt: skip
    assert ends == {"worker": (1, "exception"), "worker#2": (-15, "killed_as_daemon"),
                    "main": (0, "returned")}  # fmt: skip


def test_identical_messages_are_matched_in_order_and_puts_pair_with_feeder_writes() -> None:
    records = [
        _rec(0, 1, 1, "P", 1, 0, "root", "main", 0),
        _rec(0, 1, 1, "O", "queue", "p9r", "p9w", "q", 0, 0, "hr", "hw"),
        _rec(1, 1, 1, "U", 11, "QueueFeederThread", 1),
        _rec(2, 1, 11, "T", "QueueFeederThread", 1, "feeder", "p9r"),
        _rec(3, 1, 1, "S", 2, "consumer", 0),
        _rec(4, 2, 2, "P", 2, 1, "child", "consumer", 0),
        _rec(10, 1, 1, "M", "put", "p9r", 0, 0),
        _rec(11, 1, 1, "M", "put", "p9r", 0, 0),
        _rec(12, 1, 11, "M", "w", "p9w", 77, 20),  # two identical payloads
        _rec(13, 1, 11, "M", "w", "p9w", 77, 20),
        _rec(20, 2, 2, "M", "r", "p9r", 77, 20),
        _rec(21, 2, 2, "M", "r", "p9r", 77, 20),
        _rec(30, 1, 1, "X", "done"),
    ]
    trace = _trace(records)
    msgs = [(e.op, e.task, e.msg, e.obj, e.t) for e in trace.events if isinstance(e, MessageEvent)]
    assert msgs == [
        ("put", "main", 1, "q", 10),
        ("put", "main", 2, "q", 11),
        ("get", "consumer", 1, "q", 20),
        ("get", "consumer", 2, "q", 21),
    ]
    feeder = next(e for e in trace.events if isinstance(e, TaskCreated) and e.kind == "feeder")
    assert feeder.task == "main.q.feeder"
    assert [e.text for e in trace.events if isinstance(e, OutputEvent)] == ["done"]


def test_pool_jobs_are_numbered_per_pool_and_workers_wait_between_jobs() -> None:
    records = [
        _rec(0, 1, 1, "P", 1, 0, "root", "main", 0),
        _rec(1, 1, 1, "O", "pool", "1-1", "p"),
        _rec(2, 1, 1, "S", 2, "ForkPoolWorker-1", 1),
        _rec(3, 1, 1, "W", "1-1", 2, 1),
        _rec(4, 1, 1, "U", 12, "Thread-3 (_handle_results)", 1),
        _rec(5, 1, 12, "T", "Thread-3 (_handle_results)", 1, "result_handler", "1-1"),
        _rec(6, 2, 2, "P", 2, 1, "child", "ForkPoolWorker-1", 1),
        _rec(10, 1, 1, "J", "submit", "1-1", 40, "", "apply"),
        _rec(11, 1, 1, "J", "submit", "1-1", 41, "", "map"),
        _rec(20, 2, 2, "J", "start", "", 40, 0, ""),
        _rec(30, 2, 2, "J", "finish", "", 40, 0, ""),
        _rec(40, 2, 2, "J", "start", "", 41, 3, ""),
        _rec(50, 2, 2, "J", "error", "", 41, 3, ""),
        _rec(60, 1, 12, "J", "callback", "1-1", 40, "", ""),
    ]
    trace = _trace(records)
    jobs = [(e.op, e.task, e.job, e.chunk) for e in trace.events if isinstance(e, JobEvent)]
    assert jobs == [
        ("submit", "main", 1, None),
        ("submit", "main", 2, None),
        ("start", "p.worker1", 1, None),
        ("finish", "p.worker1", 1, None),
        ("start", "p.worker1", 2, 3),
        ("error", "p.worker1", 2, 3),
        ("callback", "main.p.result_handler", 1, None),
    ]
    worker = [(e.t, e.state, e.reason) for e in trace.events
              if isinstance(e, StateChanged) and e.task == "p.worker1"]  # fmt: skip
    assert worker[:3] == [
        (6, "blocked", "p.task"),
        (20, "running", None),
        (30, "blocked", "p.task"),
    ]
    assert structure_problems(trace) == []


def test_a_child_takes_its_start_from_its_first_record() -> None:
    """Without an S record (its parent records one only for a child that did
    not end with 0), a child's P says when (t=5) and by which thread (7) of its
    parent it was started."""
    records = [
        _rec(0, 1, 1, "P", 1, 0, "root", "main", 0),
        _rec(1, 1, 7, "T", "starter", 0, "user", ""),
        _rec(6, 2, 2, "P", 2, 1, "child", "p1", 0, 5, 7),
        _rec(8, 2, 2, "Z", 0, "returned"),
        _rec(9, 1, 1, "R", 2, 0),
    ]
    created = {e.task: e for e in _trace(records).events if isinstance(e, TaskCreated)}
    assert (created["p1"].t, created["p1"].parent) == (5, "main.starter")


def test_a_stopped_run_names_what_each_task_was_blocked_on() -> None:
    records = [
        _rec(0, 1, 1, "P", 1, 0, "root", "main", 0),
        _rec(0, 1, 1, "O", "pipe", "s5", "s6", "left", "right", 1),
        _rec(1, 1, 1, "S", 2, "p1", 0),
        _rec(2, 2, 2, "P", 2, 1, "child", "p1", 0),
        _rec(3, 2, 2, "B", "recv", "s6", 0),
        _rec(4, 1, 1, "B", "join", 2, 0),
    ]
    facts = RunFacts(1, 0, 500, "timeout", None, None, "timeout: stopped")
    trace = _trace(records, facts)
    assert trace.end.status == "timeout" and trace.end.t == 500
    assert {(b.task, b.reason) for b in trace.end.blocked} == {
        ("main", "join p1"),
        ("p1", "right.recv"),
    }
    assert not any(isinstance(e, StateChanged) and e.state == "terminated" for e in trace.events)


@pytest.mark.parametrize(
    ("cpus", "preemptive", "arrivals", "unmatched"),
    [
        (2, False, False, True),  # a child can start while another runs
        (1, False, True, True),  # an arrival can come while another runs
        (1, False, False, False),  # every child starts while main (on top) runs
        (2, True, False, False),  # preemptive priority is SCHED_FIFO's own
    ],
)
def test_non_preemptive_priority_is_listed_where_sched_fifo_would_preempt(
    monkeypatch: pytest.MonkeyPatch, cpus: int, preemptive: bool, arrivals: bool, unmatched: bool
) -> None:
    from sim.program import Machine, PolicySettings
    from sim.real import policy

    monkeypatch.setattr(policy, "_can_use_realtime", lambda: None)
    machine = Machine(cpus=cpus, policy="priority", settings=PolicySettings(preemptive=preemptive))
    planned = policy.plan(machine, arrivals)
    assert planned.rt_policy == "SCHED_FIFO" and planned.priorities
    listed = [item for item in planned.not_enforced if item.startswith("policy:")]
    assert bool(listed) == unmatched, listed
    if unmatched:
        assert "non-preemptive priority" in listed[0]
