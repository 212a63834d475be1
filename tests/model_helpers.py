"""Run scenarios through the SimPy model and read what it recorded, for the
tests/test_model_*.py files. Times are integer ns; the constants below only
make expected values readable."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from sim.kernel import simulate
from sim.program import Scenario
from sim.scenario import load_scenario, load_scenario_text
from sim.trace import (
    End,
    Event,
    JobEvent,
    MemorySink,
    MessageEvent,
    OutputEvent,
    StateChanged,
    TaskCreated,
    WarningEvent,
)

US = 1_000
MS = 1_000_000
SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"

# Every cost of the machinery at zero, so that a golden test's times are sums of
# its own computes and sleeps and the costs it sets back (see `machine`).
ZERO_COSTS = {
    "wake_up": "0ns",
    "start_call": "0ns",
    "first_start": "0ns",
    "queue_put": "0ns",
    "queue_get": "0ns",
    "feeder_latency": "0ns",
    "per_byte": "0ns",
    "pipe_send": "0ns",
    "pipe_recv": "0ns",
    "queue_put_cold": "0ns",
    "queue_get_cold": "0ns",
    "pipe_send_cold": "0ns",
    "pipe_recv_cold": "0ns",
    "queue_put_wait": "0ns",
    "join_wait": "0ns",
    "thread_join_wait": "0ns",
    "first_get": "0ns",
    "first_put": "0ns",
    "first_send": "0ns",
    "first_recv": "0ns",
    "first_print": "0ns",
    "first_feed": "0ns",
    "first_job": "0ns",
    "pool_create": "0ns",
    "pool_submit": "0ns",
    "pool_worker": "0ns",
    "pool_result": "0ns",
    "pool_dispatch": "0ns",
    "pool_maintain": "0ns",
    "pool_worker_cold": "0ns",
    "pool_dispatch_cold": "0ns",
    "pool_result_cold": "0ns",
    "pool_maintain_cold": "0ns",
    "pool_wake_cold": "0ns",
    "print": "0ns",
    "sleep": "0ns",
    "thread_start": "0ns",
    "first_thread_start": "0ns",
    "shutdown": "0ns",
    "exit_function": "0ns",
    "kill_exit": "0ns",
}


_COLD_CALLS = ("queue_put", "queue_get", "pipe_send", "pipe_recv")


def machine(cpus: int, policy: str = "linux", balance_delay: str = "2ms", **costs: str) -> str:
    """A `machine:` line with free process starts and context switches, and the
    machinery's costs at zero except those given (`feeder_latency="30us"`; a
    Queue or Pipe call's cold cost is its warm one unless given). Every
    cost is written, so the machine profile the scenario runs with changes none;
    only its time slices and the `linux` policy's balance delay remain, which
    matter only when tasks wait for a CPU."""
    # A call's cold cost is its warm one unless given: a test that prices a call
    # prices it made at any time.
    cold = {
        f"{k}_cold": v for k, v in costs.items() if k in _COLD_CALLS and f"{k}_cold" not in costs
    }
    merged = {**ZERO_COSTS, **cold, **costs}
    cost_text = ", ".join(f"{k}: {v}" for k, v in merged.items())
    return (
        f"machine: {{cpus: {cpus}, policy: {policy}, context_switch: 0ns, "
        f"balance_delay: {balance_delay}, start_cost: {{fork: 0ns}}, exit_cost: {{fork: 0ns}}, "
        f"costs: {{{cost_text}, gil_switch_interval: 5ms}}}}"
    )


@dataclass(frozen=True)
class Run:
    """One simulated run: the scenario, every event in order, the end record."""

    scenario: Scenario
    events: list[Event]
    end: End

    def states(self, task: str | None = None) -> list[StateChanged]:
        return [
            e
            for e in self.events
            if isinstance(e, StateChanged) and (task is None or e.task == task)
        ]

    def sequence(self, task: str) -> list[tuple[int, str, str | None]]:
        """(time, state, reason) of every state change of `task`."""
        return [(e.t, e.state, e.reason) for e in self.states(task)]

    def created(self) -> list[TaskCreated]:
        return [e for e in self.events if isinstance(e, TaskCreated)]

    def messages(self, obj: str | None = None, op: str | None = None) -> list[MessageEvent]:
        return [
            e
            for e in self.events
            if isinstance(e, MessageEvent)
            and (obj is None or e.obj == obj)
            and (op is None or e.op == op)
        ]

    def jobs(self, op: str | None = None) -> list[JobEvent]:
        return [e for e in self.events if isinstance(e, JobEvent) and (op is None or e.op == op)]

    def warnings(self, kind: str | None = None) -> list[WarningEvent]:
        return [
            e
            for e in self.events
            if isinstance(e, WarningEvent) and (kind is None or e.kind == kind)
        ]

    def outputs(self, task: str | None = None) -> list[OutputEvent]:
        return [
            e
            for e in self.events
            if isinstance(e, OutputEvent) and (task is None or e.task == task)
        ]

    def end_of(self, task: str) -> StateChanged:
        """The `terminated` state change of `task` (it must have one)."""
        ends = [e for e in self.states(task) if e.state == "terminated"]
        assert len(ends) == 1, f"{task} terminated {len(ends)} times"
        return ends[0]

    def first(self, task: str, state: str, reason: str | None = None) -> StateChanged:
        """The first change of `task` into `state` (with `reason`, when given)."""
        for e in self.states(task):
            if e.state == state and (reason is None or e.reason == reason):
                return e
        raise AssertionError(f"{task} never entered {state} ({reason})")

    def intervals(self, task: str, state: str) -> list[tuple[int, int, str | None]]:
        """(start, end, reason) of each stay of `task` in `state`; a stay still
        open at the end of the run ends at the run's end."""
        out: list[tuple[int, int, str | None]] = []
        entered: StateChanged | None = None
        for e in self.states(task):
            if entered is not None:
                out.append((entered.t, e.t, entered.reason))
                entered = None
            if e.state == state:
                entered = e
        if entered is not None:
            out.append((entered.t, self.end.t, entered.reason))
        return out

    def time_in(self, task: str, state: str) -> int:
        """How long `task` spent in `state` in all."""
        return sum(end - start for start, end, _ in self.intervals(task, state))

    def state_at(self, task: str, t: int) -> StateChanged | None:
        """The last state `task` entered at or before `t` (after every change at `t`)."""
        current = None
        for e in self.states(task):
            if e.t > t:
                break
            current = e
        return current


def run_scenario(scenario: Scenario) -> Run:
    sink = MemorySink()
    result = simulate(scenario, sink)
    return Run(scenario, sink.events, result.end)


def run_text(text: str) -> Run:
    return run_scenario(load_scenario_text(text, "<test>"))


def run_file(name: str, **settings: int) -> Run:
    """A shipped scenario, by file name (`pipe_full.yaml`), on the machine of its
    profile but with free context switches and wake-ups and no first-call
    surcharges, so that every time is a sum of the scenario's durations and its
    machine's per-call costs; `settings` replace policy settings
    (`linux_base_slice_ns=...`)."""
    scenario = load_scenario(SCENARIOS / name)
    kinds = ("get", "put", "send", "recv", "print", "feed", "job")
    free_first_calls = {f"first_{kind}_ns": 0 for kind in kinds}
    machine = replace(
        scenario.machine,
        context_switch_ns=0,
        costs=replace(scenario.machine.costs, wake_up_ns=0, **free_first_calls),
        settings=replace(scenario.machine.settings, **settings),
    )
    return run_scenario(replace(scenario, machine=machine))
