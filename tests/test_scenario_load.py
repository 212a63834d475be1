"""Valid scenarios load to exactly the expected `sim.program` objects.

A scenario's machine starts from its machine profile (by default the one shipped
with procsim, see `sim.calibrate`); the keys it writes replace the profile's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sim import program as p
from sim.calibrate import default_profile
from sim.scenario import ScenarioError, load_scenario, load_scenario_text
from sim.scenario_build import costs
from sim.scenario_models import OPERATIONS, CostsModel

MS = 1_000_000
US = 1_000
BASE = default_profile().machine()  # what a scenario that writes no machine key runs on


def test_the_design_sketch_loads_to_the_expected_scenario(tmp_path: Path) -> None:
    path = tmp_path / "pc.yaml"
    path.write_text(
        """\
name: producer-consumer
description: The consumer blocks on get until the producer puts.
seed: 7
machine: {cpus: 2, policy: rr, quantum: 10ms}
objects:
  q: {type: queue, maxsize: 0}
functions:
  consumer: [{get: q}]
  producer: [{compute: 5ms}, {put: {queue: q, size: 64B}}]
main:
  - spawn: {name: p1, target: consumer}
  - spawn: {name: p2, target: producer, daemon: false}
  - join: [p1, p2]
""",
        encoding="utf-8",
    )
    scenario = load_scenario(path)
    assert scenario == p.Scenario(
        name="producer-consumer",
        description="The consumer blocks on get until the producer puts.",
        seed=7,
        machine=replace(
            BASE, cpus=2, policy="rr", settings=replace(BASE.settings, quantum_ns=10 * MS)
        ),
        objects={"q": p.QueueDef("q", maxsize=0)},
        functions={
            "consumer": p.FunctionDef("consumer", (p.Get(queue="q"),)),
            "producer": p.FunctionDef(
                "producer",
                (p.Compute(duration=p.Constant(5 * MS)), p.Put(queue="q", size=64)),
            ),
        },
        main=(
            p.Spawn(name="p1", target="consumer"),
            p.Spawn(name="p2", target="producer", daemon=False),
            p.Join(names=("p1", "p2")),
        ),
        source=str(path),
    )
    # Each operation knows where it was written, for runtime messages.
    assert [op.loc for op in scenario.main] == [f"{path}:{line}:5" for line in (11, 12, 13)]
    assert scenario.functions["producer"].body[1].loc == f"{path}:9:30"


def test_defaults_come_from_sim_program_and_the_default_profile() -> None:
    scenario = load_scenario_text("name: bare\nmain: []\n")
    assert scenario == p.Scenario(
        name="bare",
        description="",
        seed=0,
        machine=BASE,
        objects={},
        functions={},
        main=(),
        compare=p.CompareSettings(),
        source="<string>",
    )


MACHINE = """\
name: machine
machine:
  cpus: 4
  policy: mlfq
  quantum: 4ms
  preemptive: false
  mlfq: {quanta: [2ms, 4ms], boost: 50ms}
  base_slice: 3ms
  context_switch: 5us
  start_method: forkserver
  start_cost: {spawn: 50ms}
  exit_cost: {fork: 2ms}
  costs:
    start_call: 1ms
    start_return: 16us
    first_start: 2ms
    queue_put: 1us
    queue_get: 2us
    feeder_latency: 3us
    per_byte: 0.25ns
    pipe_send: 4us
    pipe_recv: 5us
    pool_create: 9us
    pool_submit: 6us
    pool_worker: 7us
    pool_result: 8us
    gil_switch_interval: 1ms
    gil_turn: 10us
    print: 11us
    shutdown: 12us
    thread_start: 13us
    pool_dispatch: 14us
    pool_maintain: 15us
    wake_up: 17us
    first_get: 18us
    first_put: 19us
    first_send: 20us
    first_recv: 21us
    first_print: 22us
    first_feed: 23us
    first_job: 24us
    pool_worker_cold: 25us
    pool_dispatch_cold: 26us
    pool_result_cold: 27us
    pool_maintain_cold: 28us
    pool_wake_cold: 29us
    first_thread_start: 30us
    sleep: 31us
    kill_exit: 32us
    exit_function: 33us
    queue_put_cold: 34us
    queue_get_cold: 35us
    pipe_send_cold: 36us
    pipe_recv_cold: 37us
    queue_put_wait: 38us
    join_wait: 39us
    thread_join_wait: 40us
main: []
"""


def test_every_machine_key_maps_to_its_field() -> None:
    machine = load_scenario_text(MACHINE).machine
    # Start methods not written keep the profile's figures.
    start_cpu = {**BASE.costs.start_cpu_ns, "spawn": 50 * MS}
    exit_cpu = {**BASE.costs.exit_cpu_ns, "fork": 2 * MS}
    assert machine == p.Machine(
        cpus=4,
        policy="mlfq",
        settings=p.PolicySettings(
            quantum_ns=4 * MS,
            preemptive=False,
            mlfq_quanta_ns=(2 * MS, 4 * MS),
            mlfq_boost_ns=50 * MS,
            linux_base_slice_ns=3 * MS,
        ),
        context_switch_ns=5 * US,
        start_method="forkserver",
        costs=p.Costs(
            start_cpu_ns=start_cpu,
            exit_cpu_ns=exit_cpu,
            start_call_ns=1 * MS,
            start_return_ns=16 * US,
            first_start_ns=2 * MS,
            queue_put_ns=1 * US,
            queue_get_ns=2 * US,
            feeder_latency_ns=3 * US,
            per_byte_ns=0.25,
            pipe_send_ns=4 * US,
            pipe_recv_ns=5 * US,
            pool_create_ns=9 * US,
            pool_submit_ns=6 * US,
            pool_worker_ns=7 * US,
            pool_result_ns=8 * US,
            gil_switch_interval_ns=1 * MS,
            gil_turn_ns=10 * US,
            print_ns=11 * US,
            shutdown_ns=12 * US,
            thread_start_ns=13 * US,
            pool_dispatch_ns=14 * US,
            pool_maintain_ns=15 * US,
            wake_up_ns=17 * US,
            first_get_ns=18 * US,
            first_put_ns=19 * US,
            first_send_ns=20 * US,
            first_recv_ns=21 * US,
            first_print_ns=22 * US,
            first_feed_ns=23 * US,
            first_job_ns=24 * US,
            pool_worker_cold_ns=25 * US,
            pool_dispatch_cold_ns=26 * US,
            pool_result_cold_ns=27 * US,
            pool_maintain_cold_ns=28 * US,
            pool_wake_cold_ns=29 * US,
            first_thread_start_ns=30 * US,
            sleep_ns=31 * US,
            kill_exit_ns=32 * US,
            exit_function_ns=33 * US,
            queue_put_cold_ns=34 * US,
            queue_get_cold_ns=35 * US,
            pipe_send_cold_ns=36 * US,
            pipe_recv_cold_ns=37 * US,
            queue_put_wait_ns=38 * US,
            join_wait_ns=39 * US,
            thread_join_wait_ns=40 * US,
        ),
    )


def test_every_cost_of_sim_program_can_be_written() -> None:
    """A cost added to `sim.program.Costs` needs its key in the language too."""
    written = {f"{key}_ns" for key in CostsModel.model_fields} | {"start_cpu_ns", "exit_cpu_ns"}
    assert written == set(p.Costs.__dataclass_fields__)
    assert costs(None, {}, {}, p.Costs()) == p.Costs()


OBJECTS = """\
name: objects
objects:
  q: {type: queue, maxsize: 3}
  jq: {type: joinable_queue}
  pp: {type: pipe, duplex: false, ends: [rx, tx]}
  dp: {type: pipe, ends: [a, b]}
  lk: {type: lock}
  rl: {type: rlock}
  sem: {type: semaphore, value: 2}
  bsem: {type: bounded_semaphore}
  ev: {type: event}
  cv: {type: condition}
  bar: {type: barrier, parties: 3}
  pool: {type: pool, workers: 4, maxtasksperchild: 10}
  pool2: {type: pool}
main: []
"""


def test_every_object_type() -> None:
    assert load_scenario_text(OBJECTS).objects == {
        "q": p.QueueDef("q", maxsize=3),
        "jq": p.QueueDef("jq", joinable=True),
        "pp": p.PipeDef("pp", ("rx", "tx"), duplex=False),
        "dp": p.PipeDef("dp", ("a", "b")),
        "lk": p.LockDef("lk"),
        "rl": p.LockDef("rl", reentrant=True),
        "sem": p.SemaphoreDef("sem", value=2),
        "bsem": p.SemaphoreDef("bsem", bounded=True),
        "ev": p.EventDef("ev"),
        "cv": p.ConditionDef("cv"),
        "bar": p.BarrierDef("bar", parties=3),
        "pool": p.PoolDef("pool", workers=4, maxtasksperchild=10),
        "pool2": p.PoolDef("pool2"),
    }


EVERY_OPERATION = (
    OBJECTS.replace("main: []\n", "")
    + """\
functions:
  f: [{compute: 1ms}]
  g: {body: [{sleep: 1ms}], returns: 1KiB}
main:
  - compute: {uniform: [1ms, 3ms]}
  - sleep: {exponential: 2ms}
  - compute: {normal: {mean: 5ms, std: 1ms}}
  - compute: {constant: 1.5ms}
  - print: hello
  - repeat: {times: 2, do: [{compute: 1us}]}
  - exit: 3
  - raise: ValueError
  - spawn: {name: p1, target: f, daemon: true, start: false, priority: 2, arrive_at: 1ms}
  - start: p1
  - join: p1
  - join: {names: [p1, t1], timeout: 5ms}
  - terminate: p1
  - is_alive: p1
  - thread: {name: t1, target: g, daemon: true}
  - put: q
  - put: {queue: jq, size: 1KiB, timeout: 1ms, on_timeout: [{print: full}]}
  - get: {queue: q, timeout: 2ms, on_timeout: []}
  - get: jq
  - task_done: jq
  - join_queue: jq
  - send: tx
  - send: {end: a, size: 2KiB}
  - recv: {end: rx, on_eof: [{exit: 0}]}
  - recv: b
  - close: a
  - acquire: {obj: sem, timeout: 1ms, on_timeout: [{print: busy}]}
  - acquire: cv
  - release: sem
  - with_lock: {lock: rl, do: [{compute: 1us}]}
  - set: ev
  - clear: ev
  - wait_event: {event: ev, timeout: 1s}
  - wait_condition: cv
  - wait_condition: {condition: cv, timeout: 1ms, on_timeout: [{print: late}]}
  - notify: cv
  - notify: {condition: cv, n: 2}
  - notify_all: cv
  - barrier_wait: bar
  - apply: {pool: pool, function: f, arg_size: 128B}
  - apply_async: {pool: pool, function: f, times: 10, arg_size: 1B, callback: g, error_callback: f}
  - map: {pool: pool, function: f, items: 10}
  - map_async: {pool: pool, function: f, items: 10, chunksize: 2, arg_size: 8B, callback: g}
  - starmap: {pool: pool, function: f, items: 4}
  - imap: {pool: pool, function: f, items: 4, chunksize: 1}
  - imap_unordered: {pool: pool, function: f, items: 4}
  - wait_results: pool
  - close_pool: pool
  - join_pool: pool
  - terminate_pool: pool
  - with_pool: {pool: pool2, do: [{apply: {pool: pool2, function: f}}]}
"""
)

EXPECTED_MAIN = (
    p.Compute(duration=p.Uniform(1 * MS, 3 * MS)),
    p.Sleep(duration=p.Exponential(2 * MS)),
    p.Compute(duration=p.Normal(5 * MS, 1 * MS)),
    p.Compute(duration=p.Constant(1_500_000)),
    p.Print(text="hello"),
    p.Repeat(times=2, body=(p.Compute(duration=p.Constant(US)),)),
    p.Exit(code=3),
    p.Raise(error="ValueError"),
    p.Spawn(name="p1", target="f", daemon=True, start=False, priority=2, arrive_at=MS),
    p.Start(name="p1"),
    p.Join(names=("p1",)),
    p.Join(names=("p1", "t1"), timeout=p.Constant(5 * MS)),
    p.Terminate(name="p1"),
    p.IsAlive(name="p1"),
    p.StartThread(name="t1", target="g", daemon=True),
    p.Put(queue="q"),
    p.Put(queue="jq", size=1024, timeout=p.Constant(MS), on_timeout=(p.Print(text="full"),)),
    p.Get(queue="q", timeout=p.Constant(2 * MS), on_timeout=()),
    p.Get(queue="jq"),
    p.TaskDone(queue="jq"),
    p.JoinQueue(queue="jq"),
    p.Send(end="tx"),
    p.Send(end="a", size=2048),
    p.Recv(end="rx", on_eof=(p.Exit(code=0),)),
    p.Recv(end="b"),
    p.Close(end="a"),
    p.Acquire(obj="sem", timeout=p.Constant(MS), on_timeout=(p.Print(text="busy"),)),
    p.Acquire(obj="cv"),
    p.Release(obj="sem"),
    p.Locked(obj="rl", body=(p.Compute(duration=p.Constant(US)),)),
    p.SetEvent(event="ev"),
    p.ClearEvent(event="ev"),
    p.WaitEvent(event="ev", timeout=p.Constant(1_000 * MS)),
    p.Wait(condition="cv"),
    p.Wait(condition="cv", timeout=p.Constant(MS), on_timeout=(p.Print(text="late"),)),
    p.Notify(condition="cv"),
    p.Notify(condition="cv", n=2),
    p.Notify(condition="cv", n=None),
    p.BarrierWait(barrier="bar"),
    p.Apply(pool="pool", function="f", arg_size=128),
    p.ApplyAsync(pool="pool", function="f", times=10, arg_size=1, callback="g", error_callback="f"),
    p.Map(pool="pool", function="f", items=10),
    p.Map(
        pool="pool",
        function="f",
        items=10,
        kind="map_async",
        chunksize=2,
        arg_size=8,
        callback="g",
    ),
    p.Map(pool="pool", function="f", items=4, kind="starmap"),
    p.Map(pool="pool", function="f", items=4, kind="imap", chunksize=1),
    p.Map(pool="pool", function="f", items=4, kind="imap_unordered"),
    p.WaitResults(pool="pool"),
    p.PoolClose(pool="pool"),
    p.PoolJoin(pool="pool"),
    p.PoolTerminate(pool="pool"),
    p.WithPool(pool="pool2", body=(p.Apply(pool="pool2", function="f"),)),
)


def test_every_operation_builds_its_program_step() -> None:
    scenario = load_scenario_text(EVERY_OPERATION, "every.yaml")
    assert scenario.main == EXPECTED_MAIN
    assert scenario.functions["g"] == p.FunctionDef(
        "g", (p.Sleep(duration=p.Constant(MS)),), result_size=1024
    )
    # Nested blocks carry their own positions.
    assert scenario.main[5].loc == "every.yaml:25:5"
    repeat = scenario.main[5]
    assert isinstance(repeat, p.Repeat)
    assert repeat.body[0].loc == "every.yaml:25:29"


def test_the_test_above_covers_every_operation() -> None:
    written = {
        line.split(":")[0].strip(" -") for line in EVERY_OPERATION.split("main:\n")[1].splitlines()
    }
    assert written == set(OPERATIONS)


def test_yaml_anchors_and_aliases_work() -> None:
    scenario = load_scenario_text(
        """\
name: anchors
functions:
  work: &steps [{compute: 1ms}, {sleep: 1ms}]
  again: *steps
main: *steps
"""
    )
    assert scenario.main == scenario.functions["again"].body == scenario.functions["work"].body


def test_keys_are_the_text_written() -> None:
    """An object may be named `on`: keys are never YAML 1.1 booleans (values are,
    so the reference is quoted)."""
    scenario = load_scenario_text(
        'name: keys\nobjects:\n  on: {type: event}\nmain: [{set: "on"}]\n'
    )
    assert scenario.main == (p.SetEvent(event="on"),)


@pytest.mark.parametrize("text", ["name: x\r\nmain: []\r\n", "\ufeffname: x\nmain: []\n"])
def test_line_endings_and_byte_order_mark(text: str, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(text.encode("utf-8"))
    assert load_scenario(path).name == "x"


IDEALISED = """\
name: idealised
machine: {cpus: 1, policy: fcfs, start_cost: {fork: 0ns}, exit_cost: {fork: 0ns},
          context_switch: 0ns, costs: {start_call: 0ns}}
compare: {costs: profile, why: textbook figures}
main: [{compute: 1ms}]
"""


def test_compare_costs_profile_keeps_the_machine_but_takes_the_profiles_costs() -> None:
    scenario = load_scenario_text(IDEALISED)
    assert scenario.machine.costs.start_cpu_ns["fork"] == 0
    compared = p.as_compared(scenario)
    assert (compared.machine.cpus, compared.machine.policy) == (1, "fcfs")
    assert compared.machine.costs == BASE.costs
    assert compared.machine.context_switch_ns == BASE.context_switch_ns
    assert compared.objects == scenario.objects and compared.main == scenario.main
    # A machine changed after loading (a command line's --policy) stays changed.
    on_rr = replace(scenario, machine=replace(scenario.machine, policy="rr", cpus=2))
    assert (p.as_compared(on_rr).machine.policy, p.as_compared(on_rr).machine.cpus) == ("rr", 2)
    plain = load_scenario_text(IDEALISED.replace("costs: profile, why", "why"))
    assert p.as_compared(plain) is plain


def test_compare_costs_profile_needs_a_reason() -> None:
    with pytest.raises(ScenarioError) as error:
        load_scenario_text(IDEALISED.replace(", why: textbook figures", ""))
    assert "the costs are replaced, so say why" in str(error.value)
