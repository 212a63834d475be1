"""Golden tests of Queue and JoinableQueue in the model: exact event sequences,
with every expected time derived from the scenario's costs."""

from __future__ import annotations

from pathlib import Path

from model_helpers import MS, Run, machine, run_file, run_text
from typer.testing import CliRunner

from sim.cli.app import app
from sim.program import Costs
from sim.trace import BlockedTask


def pickle_ns(costs: Costs, size: int) -> int:
    return round(size * costs.per_byte_ns)


def max_held(run: Run, queue: str) -> int:
    """The most items `queue` held at the end of any instant: puts minus gets,
    a get counting from when its item left the pipe (before it was unpickled,
    which is when CPython releases the queue's semaphore)."""
    costs = run.scenario.machine.costs
    deltas: dict[int, int] = {}
    for m in run.messages(queue):
        t = m.t if m.op == "put" else m.t - pickle_ns(costs, m.size)
        deltas[t] = deltas.get(t, 0) + (1 if m.op == "put" else -1)
    held = most = 0
    for t in sorted(deltas):
        held += deltas[t]
        most = max(most, held)
    return most


def test_consumer_blocks_on_get_until_put_plus_feeder_latency() -> None:
    run = run_text(f"""
name: producer-consumer
{machine(3, queue_put="5us", queue_get="10us", feeder_latency="30us", per_byte="1ns")}
objects:
  q: {{type: queue}}
functions:
  consumer: [{{get: q}}]
  producer: [{{compute: 5ms}}, {{put: {{queue: q, size: 1000B}}}}]
main:
  - spawn: {{name: c, target: consumer}}
  - spawn: {{name: p, target: producer}}
  - join: [c, p]
""")
    costs = run.scenario.machine.costs
    put_t = 5 * MS + costs.queue_put_ns
    # The feeder thread pickles and writes the item after the put returns.
    arrives = put_t + costs.feeder_latency_ns + pickle_ns(costs, 1000)
    # The consumer reads the bytes (get's own cost), then unpickles them.
    got = arrives + costs.queue_get_ns + pickle_ns(costs, 1000)
    assert run.sequence("c") == [
        (0, "ready", None),
        (0, "running", None),
        (0, "blocked", "q.get"),
        (arrives, "ready", None),
        (arrives, "running", None),
        (got, "terminated", None),
    ]
    [put] = run.messages("q", "put")
    [get] = run.messages("q", "get")
    assert (put.t, put.task, put.size) == (put_t, "p", 1000)
    assert (get.t, get.task, get.msg) == (got, "c", put.msg)
    # The put is the feeder's job: a thread of the producer, created at its first put.
    feeder = next(e for e in run.created() if e.task == "p.q.feeder")
    assert (feeder.t, feeder.kind, feeder.process, feeder.daemon) == (put_t, "feeder", "p", True)
    assert run.end.status == "complete"


def test_each_process_pays_its_first_get_and_put_once_before_it_can_block() -> None:
    per_call = {"queue_put": "5us", "queue_get": "10us", "feeder_latency": "30us"}
    firsts = {"first_get": "400us", "first_put": "200us", "thread_start": "100us"}
    run = run_text(f"""
name: first-calls
{machine(3, **per_call, **firsts)}
objects:
  q: {{type: queue}}
functions:
  consumer: [{{get: q}}, {{get: q}}]
  producer: [{{compute: 5ms}}, {{put: {{queue: q, size: 0B}}}}, {{put: {{queue: q, size: 0B}}}}]
main:
  - spawn: {{name: c, target: consumer}}
  - spawn: {{name: p, target: producer}}
  - join: [c, p]
""")
    costs = run.scenario.machine.costs
    # The first put costs first_put more, then starts the feeder; the second, neither.
    first_put = 5 * MS + costs.first_put_ns + costs.queue_put_ns
    second_put = first_put + costs.thread_start_ns + costs.queue_put_ns
    assert [m.t for m in run.messages("q", "put")] == [first_put, second_put]
    # The consumer's first get pays first_get before it blocks; its second, not.
    assert run.sequence("c")[:3] == [
        (0, "ready", None),
        (0, "running", None),
        (costs.first_get_ns, "blocked", "q.get"),
    ]
    assert run.time_in("c", "running") == costs.first_get_ns + 2 * costs.queue_get_ns


def test_a_call_1_ms_or_more_after_the_threads_last_one_runs_cold() -> None:
    # The producer's second put comes 0.5 ms after its first: warm; its third,
    # 2 ms after the second: cold. The consumer's second get has its item 0.5 ms
    # after its first returned: warm; its third waits 2 ms for it: cold.
    costs = {"queue_put": "5us", "queue_get": "10us"}
    colds = {"queue_put_cold": "50us", "queue_get_cold": "70us"}
    run = run_text(f"""
name: cold-calls
{machine(3, **costs, **colds)}
objects:
  q: {{type: queue}}
functions:
  consumer: [{{get: q}}, {{get: q}}, {{get: q}}]
  producer:
    - compute: 1ms
    - put: {{queue: q, size: 0B}}
    - compute: 500us
    - put: {{queue: q, size: 0B}}
    - compute: 2ms
    - put: {{queue: q, size: 0B}}
main:
  - spawn: {{name: c, target: consumer}}
  - spawn: {{name: p, target: producer}}
  - join: [c, p]
""")
    paid = run.scenario.machine.costs
    assert run.time_in("p", "running") == (
        3_500_000 + 2 * paid.queue_put_ns + paid.queue_put_cold_ns
    )
    assert run.time_in("c", "running") == 2 * paid.queue_get_ns + paid.queue_get_cold_ns


def test_a_put_that_waited_for_a_slot_pays_queue_put_wait() -> None:
    # The second put waits 3 ms for the consumer's get to free the only slot.
    run = run_text(f"""
name: put-wait
{machine(3, queue_put="5us", queue_put_wait="200us")}
objects:
  q: {{type: queue, maxsize: 1}}
functions:
  consumer: [{{compute: 3ms}}, {{get: q}}, {{get: q}}]
  producer: [{{put: {{queue: q, size: 0B}}}}, {{put: {{queue: q, size: 0B}}}}]
main:
  - spawn: {{name: c, target: consumer}}
  - spawn: {{name: p, target: producer}}
  - join: [c, p]
""")
    paid = run.scenario.machine.costs
    assert ("p", "q.put") in {(s.task, s.reason) for s in run.states() if s.state == "blocked"}
    assert run.time_in("p", "running") == 2 * paid.queue_put_ns + paid.queue_put_wait_ns


def test_a_feeders_first_item_costs_it_first_feed_more() -> None:
    def gets(first_feed: str) -> list[int]:
        run = run_text(f"""
name: first-feed
{machine(3, feeder_latency="30us", first_feed=first_feed)}
objects:
  q: {{type: queue}}
functions:
  consumer: [{{get: q}}, {{get: q}}]
  producer: [{{compute: 5ms}}, {{put: q}}, {{compute: 1ms}}, {{put: q}}]
main:
  - spawn: {{name: c, target: consumer}}
  - spawn: {{name: p, target: producer}}
  - join: [c, p]
""")
        return [m.t for m in run.messages("q", "get")]

    # The first item is later by the feeder's first-item cost, and so is the
    # second, only because the producer waited for the GIL meanwhile: charged
    # on every item, it would make the second 140 µs later.
    free, paid = gets("0ns"), gets("70us")
    assert [b - a for a, b in zip(free, paid, strict=True)] == [70_000, 70_000]


def test_each_put_has_the_feeder_write_the_item_of_the_put_before() -> None:
    # CPython's feeder, blocked on the condition's lock, takes it as the first put
    # lets go of it and then waits for the GIL: the next put finds the lock
    # taken, waits while the feeder writes the item before (30 µs here), and
    # the feeder waits on the lock again. The last item goes at the exit.
    run = run_text(f"""
name: convoy
{machine(2, feeder_latency="30us")}
objects:
  q: {{type: queue}}
functions:
  producer:
    - repeat: {{times: 3, do: [{{compute: 1ms}}, {{put: {{queue: q, size: 0B}}}}]}}
    - compute: 3ms
  consumer: [{{get: q}}, {{get: q}}, {{get: q}}]
main:
  - spawn: {{name: c, target: consumer}}
  - spawn: {{name: p, target: producer}}
  - join: [c, p]
""")
    feed = 30_000
    puts = [1 * MS, 2 * MS, 3 * MS + feed]
    assert [m.t for m in run.messages("q", "put")] == puts
    assert [m.t for m in run.messages("q", "get")] == [2 * MS + feed, 3 * MS + 2 * feed,
                                                       6 * MS + 3 * feed]  # fmt: skip
    # Each time the producer finds the lock taken; the feeder lets go of it at
    # once, and the producer then waits for the GIL while the feeder writes.
    blocked = run.intervals("p", "blocked")
    starts = [2 * MS, 3 * MS + feed, 6 * MS + 2 * feed]
    assert [i for i in blocked if i[2] == "q.notempty"] == [(t, t, "q.notempty") for t in starts]
    assert [i for i in blocked if i[2] == "gil"] == [(t, t + feed, "gil") for t in starts]


def test_joinable_queue_join_returns_exactly_at_the_last_task_done() -> None:
    run = run_text(f"""
name: joinable
{machine(3)}
objects:
  jq: {{type: joinable_queue}}
functions:
  worker:
    - repeat: {{times: 3, do: [{{get: jq}}, {{compute: 2ms}}, {{task_done: jq}}, {{compute: 1ms}}]}}
main:
  - spawn: {{name: w, target: worker}}
  - put: jq
  - put: jq
  - put: jq
  - join_queue: jq
  - print: joined
  - join: w
""")
    # Item k is taken at 3k ms and marked done 2 ms later; the third at 8 ms.
    last_task_done = 2 * 3 * MS + 2 * MS
    assert [g.t for g in run.messages("jq", "get")] == [0, 3 * MS, 6 * MS]
    joins = [i for i in run.intervals("main", "blocked") if i[2] == "jq.join"]
    assert joins == [(0, last_task_done, "jq.join")]
    assert [(o.t, o.text) for o in run.outputs("main")] == [(last_task_done, "joined")]
    # The worker still runs after its last task_done: join did not wait for it.
    assert run.end_of("w").t == last_task_done + 1 * MS
    assert run.warnings() == []


def test_bounded_queue_producer_blocks_on_put_and_queue_never_exceeds_maxsize() -> None:
    run = run_file("bounded_queue.yaml")
    costs = run.scenario.machine.costs
    blocks = [i for i in run.intervals("producer", "blocked") if i[2] == "q.put"]
    # Six items into two slots, the consumer 10x slower. The first reaches the
    # consumer at the second put (which has the feeder write it), so the
    # consumer frees a slot before the third: the last three puts wait, as in
    # every real run of the scenario.
    assert len(blocks) == 3
    # Each wait ends when the consumer's get takes an item out of the pipe.
    freed = {g.t - pickle_ns(costs, g.size) for g in run.messages("q", "get")}
    assert {end for _, end, _ in blocks} <= freed
    assert max_held(run, "q") == 2
    assert len(run.messages("q", "put")) == len(run.messages("q", "get")) == 6
    assert run.end.status == "complete"


def test_a_slot_is_freed_only_by_a_getter_that_runs() -> None:
    # The consumer waits in get; the hog keeps CPU 0 and the producer (more urgent
    # than the consumer) CPU 1. When the producer's feeder writes item 1 the
    # consumer becomes ready but gets no CPU until the producer is done: in
    # CPython it has not released the semaphore, so the producer's second put
    # must stay blocked on q.put.
    run = run_text(f"""
name: slot-freed-by-a-runner
{machine(2, policy="priority")}
objects:
  q: {{type: queue, maxsize: 1}}
functions:
  producer: [{{put: q}}, {{put: q}}, {{compute: 10ms}}]
  consumer: [{{get: q}}, {{get: q}}]
  hog: [{{compute: 20ms}}]
main:
  - spawn: {{name: c, target: consumer, priority: 3}}
  - spawn: {{name: h, target: hog, priority: 1, arrive_at: 1ms}}
  - spawn: {{name: p, target: producer, priority: 2, arrive_at: 2ms}}
  - join: [c, p, h]
""")
    assert max_held(run, "q") <= 1
    second_put = run.messages("q", "put")[1]
    first_get = run.messages("q", "get")[0]
    assert second_put.t >= first_get.t


def test_timeouts_run_on_timeout_or_exit_with_1() -> None:
    run = run_text(f"""
name: timeouts
{machine(4)}
objects:
  full: {{type: queue, maxsize: 1}}
  empty1: {{type: queue}}
  empty2: {{type: queue}}
functions:
  patient_getter:
    - get: {{queue: empty1, timeout: 3ms, on_timeout: [{{print: empty}}]}}
    - compute: 1ms
  getter: [{{get: {{queue: empty2, timeout: 4ms}}}}, {{print: never}}]
  putter:
    - put: full
    - put: {{queue: full, timeout: 2ms, on_timeout: [{{print: full}}]}}
    - put: {{queue: full, timeout: 5ms}}
    - print: never
main:
  - spawn: {{name: a, target: patient_getter}}
  - spawn: {{name: b, target: getter}}
  - spawn: {{name: c, target: putter}}
  - join: [a, b, c]
""")
    # queue.Empty handled: the on_timeout block runs and the program goes on.
    assert run.intervals("a", "blocked") == [(0, 3 * MS, "empty1.get")]
    assert [(o.t, o.text) for o in run.outputs("a")] == [(3 * MS, "empty")]
    a_end = run.end_of("a")
    assert (a_end.t, a_end.exit_code, a_end.cause) == (4 * MS, 0, "returned")
    # queue.Empty unhandled: exit code 1, cause exception, and a warning.
    assert run.intervals("b", "blocked") == [(0, 4 * MS, "empty2.get")]
    b_end = run.end_of("b")
    assert (b_end.t, b_end.exit_code, b_end.cause) == (4 * MS, 1, "exception")
    [b_warn] = [w for w in run.warnings("exception") if w.task == "b"]
    assert b_warn.t == 4 * MS and "queue.Empty" in b_warn.text
    # queue.Full, handled then unhandled.
    put_blocks = [i for i in run.intervals("c", "blocked") if i[2] == "full.put"]
    assert put_blocks == [(0, 2 * MS, "full.put"), (2 * MS, 7 * MS, "full.put")]
    assert [(o.t, o.text) for o in run.outputs("c")] == [(2 * MS, "full")]
    c_end = run.end_of("c")
    assert (c_end.t, c_end.exit_code, c_end.cause) == (7 * MS, 1, "exception")
    [c_warn] = [w for w in run.warnings("exception") if w.task == "c"]
    assert c_warn.t == 7 * MS and "queue.Full" in c_warn.text
    assert not [o for o in run.outputs() if o.text == "never"]


def test_task_done_once_too_often_warns_and_exits_1() -> None:
    run = run_text(f"""
name: task-done-too-often
{machine(2)}
objects:
  jq: {{type: joinable_queue}}
functions:
  worker: [{{put: jq}}, {{get: jq}}, {{task_done: jq}}, {{compute: 1ms}}, {{task_done: jq}}]
main:
  - spawn: {{name: w, target: worker}}
  - join: w
""")
    [get] = run.messages("jq", "get")
    second_task_done = get.t + 1 * MS
    [warning] = run.warnings("task_done")
    assert (warning.t, warning.task) == (second_task_done, "w")
    assert "jq" in warning.text
    end = run.end_of("w")
    assert (end.exit_code, end.cause) == (1, "exception")
    assert run.end.status == "complete"


def test_queue_deadlock_names_both_processes_their_queues_and_the_cycle() -> None:
    run = run_file("queue_deadlock.yaml")
    assert run.end.status == "deadlock"
    assert set(run.end.blocked) == {
        BlockedTask("main", "join p1"),
        BlockedTask("p1", "q1.get"),
        BlockedTask("p2", "q2.get"),
    }
    assert run.end.cycle in (("p1", "p2"), ("p2", "p1"))
    # The verdict comes at the last state change: p2 blocking, once it has started
    # (on p1's CPU, where it was placed at its fork, once p1 has blocked).
    assert run.end.t == run.first("p2", "blocked", "q2.get").t
    assert run.first("p2", "running").t == run.first("p1", "blocked", "q1.get").t


def test_procsim_simulate_exits_3_on_the_queue_deadlock(tmp_path: Path) -> None:
    scenario = Path(__file__).resolve().parent.parent / "scenarios" / "queue_deadlock.yaml"
    result = CliRunner().invoke(app, ["simulate", str(scenario), "-o", str(tmp_path / "t.jsonl")])
    assert result.exit_code == 3, result.stdout
    out = result.stdout
    assert "DEADLOCK" in out
    assert "p1 is blocked on q1.get" in out
    assert "p2 is blocked on q2.get" in out
    cycle_lines = [line for line in out.splitlines() if "wait-for cycle" in line]
    assert cycle_lines and all("p1" in line and "p2" in line for line in cycle_lines)


def test_a_feeder_woken_at_its_process_exit_waits_for_its_cpu() -> None:
    # The producer's exit wakes its feeder (the Queue's close), runs on for
    # `exit_function` and only then joins it: the feeder, woken while both CPUs
    # were busy, waits for the consumer's CPU, and the producer's idles.
    run = run_file("reference_queue.yaml")
    costs = run.scenario.machine.costs
    assert costs.exit_function_ns > 0
    join = run.first("p2", "blocked", "join p2.q.feeder")
    woken = join.t - costs.exit_function_ns
    assert run.sequence("p2.q.feeder")[-3:] == [
        (woken, "ready", None),
        (run.end_of("p1").t, "running", None),
        (run.end_of("p1").t, "terminated", None),
    ]
    assert run.state_at("p2", woken) is not None and run.state_at("p2", woken).state == "running"
    assert run.end_of("p1").t - join.t > 500_000  # the feeder's wait: the consumer's exit
