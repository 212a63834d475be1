"""Simulate a scenario: build the machine, run the model to its end, give the verdict."""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass

import sim
from sim.kernel import deadlock
from sim.kernel.clock import Clock
from sim.kernel.interpreter import Interpreter
from sim.kernel.scheduler import Scheduler
from sim.policies import make_policy
from sim.program import Scenario
from sim.trace import End, Header, TraceSink


@dataclass(frozen=True)
class SimResult:
    end: End
    makespan_ns: int


def sim_header(scenario: Scenario) -> Header:
    machine = scenario.machine
    return Header(
        scenario=scenario.name,
        source="sim",
        machine={
            "cpus": machine.cpus,
            "policy": machine.policy,
            "context_switch_ns": machine.context_switch_ns,
            "start_method": machine.start_method,
            "settings": asdict(machine.settings),
            "costs": {
                **asdict(machine.costs),
                "start_cpu_ns": dict(machine.costs.start_cpu_ns),
                "exit_cpu_ns": dict(machine.costs.exit_cpu_ns),
            },
        },
        seed=scenario.seed,
        tool_version=sim.__version__,
        python_version=platform.python_version(),
        clock_origin="simulated",
        notes={"source_file": scenario.source} if scenario.source else {},
    )


def simulate(scenario: Scenario, sink: TraceSink) -> SimResult:
    """Run the model of `scenario`, sending every event to `sink`."""
    env = Clock()
    machine = scenario.machine
    scheduler = Scheduler(
        env,
        make_policy(machine.policy, machine.settings),
        machine.cpus,
        machine.context_switch_ns,
        sink,
        machine.costs.wake_up_ns,
    )
    interpreter = Interpreter(env, scheduler, scenario, sink)
    interpreter.start()
    # Runs until no event is left: every task has ended, or those left wait for
    # something that can no longer happen.
    env.run_to_end()
    # The clock may have run on past the last state change (a GIL timer that
    # found nothing to do): the run ended with the last change.
    now = scheduler.last_change
    blocked = deadlock.blocked_tasks(scheduler.tasks)
    if blocked:
        cycle = deadlock.wait_cycle(scheduler.tasks)
        end = End(now, "deadlock", blocked, cycle, deadlock.describe(blocked))
    else:
        end = End(now, "complete")
    return SimResult(end, now)
