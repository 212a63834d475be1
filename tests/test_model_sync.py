"""Golden tests of Lock, RLock, Semaphore, Event, Condition and Barrier in the
model: who blocks, on what reason, and exactly when they are let go."""

from __future__ import annotations

import pytest
from model_helpers import MS, Run, machine, run_text


def sync_run(objects: str, functions: str, spawned: list[str]) -> Run:
    spawns = "\n".join(f"  - spawn: {{name: {n}, target: {n}_code}}" for n in spawned)
    return run_text(f"""
name: sync
{machine(4)}
objects:
{objects}
functions:
{functions}
main:
{spawns}
  - join: [{", ".join(spawned)}]
""")


def test_lock_blocks_a_second_taker_until_release() -> None:
    run = sync_run(
        "  lk: {type: lock}",
        """  holder_code: [{acquire: lk}, {sleep: 10ms}, {release: lk}]
  taker_code: [{sleep: 1ms}, {acquire: lk}, {compute: 2ms}, {release: lk}]""",
        ["holder", "taker"],
    )
    assert run.intervals("taker", "blocked") == [
        (0, 1 * MS, "sleep"),
        (1 * MS, 10 * MS, "lk.acquire"),
    ]
    assert run.end_of("taker").t == 12 * MS


def test_rlock_is_reentrant_for_its_owner_only() -> None:
    run = sync_run(
        "  rl: {type: rlock}",
        """  owner_code:
    - acquire: rl
    - acquire: rl
    - sleep: 5ms
    - release: rl
    - sleep: 5ms
    - release: rl
  other_code: [{sleep: 1ms}, {acquire: rl}, {release: rl}]""",
        ["owner", "other"],
    )
    # The owner takes it twice without blocking; the other waits for both releases.
    assert [i[2] for i in run.intervals("owner", "blocked")] == ["sleep", "sleep"]
    assert run.intervals("other", "blocked")[-1] == (1 * MS, 10 * MS, "rl.acquire")
    assert run.end.status == "complete"


def test_semaphore_admits_value_holders() -> None:
    run = sync_run(
        "  sem: {type: semaphore, value: 2}",
        "\n".join(
            f"  s{i}_code: [{{sleep: {i}ms}}, {{acquire: sem}}, {{sleep: 10ms}}, {{release: sem}}]"
            for i in (1, 2, 3)
        ),
        ["s1", "s2", "s3"],
    )
    assert [i[2] for i in run.intervals("s1", "blocked")] == ["sleep", "sleep"]
    assert [i[2] for i in run.intervals("s2", "blocked")] == ["sleep", "sleep"]
    # The third waits until the first lets go, 1 + 10 ms.
    assert run.intervals("s3", "blocked")[1] == (3 * MS, 11 * MS, "sem.acquire")


def test_event_wait_blocks_until_set() -> None:
    run = sync_run(
        "  ev: {type: event}",
        """  waiter_code: [{wait_event: ev}, {compute: 1ms}]
  setter_code: [{sleep: 4ms}, {set: ev}]
  late_code: [{sleep: 6ms}, {wait_event: ev}]""",
        ["waiter", "setter", "late"],
    )
    assert run.intervals("waiter", "blocked") == [(0, 4 * MS, "ev.wait")]
    assert run.end_of("waiter").t == 5 * MS
    # Once set, wait returns at once.
    assert run.intervals("late", "blocked") == [(0, 6 * MS, "sleep")]


def test_condition_wait_until_notified() -> None:
    run = sync_run(
        "  cv: {type: condition}",
        """  waiter_code: [{with_lock: {lock: cv, do: [{wait_condition: cv}, {compute: 1ms}]}}]
  notifier_code:
    - sleep: 3ms
    - with_lock: {lock: cv, do: [{notify: cv}, {sleep: 2ms}]}""",
        ["waiter", "notifier"],
    )
    # Notified at 3 ms, it must take the condition's lock back: the notifier
    # holds it for 2 ms more.
    assert run.intervals("waiter", "blocked") == [
        (0, 3 * MS, "cv.wait"),
        (3 * MS, 5 * MS, "cv.acquire"),
    ]
    assert run.end_of("waiter").t == 6 * MS


@pytest.mark.parametrize("parties", [2, 3])
def test_barrier_releases_all_when_the_last_party_arrives(parties: int) -> None:
    names = [f"b{i}" for i in range(1, parties + 1)]
    run = sync_run(
        f"  bar: {{type: barrier, parties: {parties}}}",
        "\n".join(
            f"  {n}_code: [{{compute: {i}ms}}, {{barrier_wait: bar}}, {{compute: 1ms}}]"
            for i, n in enumerate(names, start=1)
        ),
        names,
    )
    last = parties * MS
    for i, name in enumerate(names[:-1], start=1):
        assert run.intervals(name, "blocked") == [(i * MS, last, "bar.wait")]
    assert run.intervals(names[-1], "blocked") == []
    assert {run.end_of(n).t for n in names} == {last + 1 * MS}


def test_a_lock_waiter_woken_while_every_cpu_is_busy_waits_for_its_own() -> None:
    # A lock's wake-up is a futex wake: the kernel places the waiter while its
    # waker still runs. Here both CPUs are busy then (the holder, and the hog the
    # waiter last shared a CPU with), so it waits in its own CPU's queue; the
    # holder's CPU, idle from that instant as the holder sleeps, takes it only
    # once it has not run for the balance delay.
    run = run_text(f"""
name: futex-wake
{machine(2)}
objects:
  l: {{type: lock}}
functions:
  hog: [{{compute: 20ms}}]
  holder: [{{acquire: l}}, {{compute: 3ms}}, {{release: l}}, {{sleep: 10ms}}]
  waiter: [{{sleep: 1ms}}, {{acquire: l}}, {{compute: 1ms}}]
main:
  - spawn: {{name: holder, target: holder}}
  - spawn: {{name: waiter, target: waiter}}
  - spawn: {{name: hog, target: hog}}
  - join: [holder, waiter, hog]
""")
    slice_ns = run.scenario.machine.settings.linux_base_slice_ns
    # The waiter, back from its sleep, waits for the hog's slice to end, then
    # blocks on the lock.
    blocked = run.first("waiter", "blocked", "l.acquire")
    assert blocked.t == slice_ns
    shared = run.state_at("hog", slice_ns)
    assert shared is not None and shared.state == "running"
    holder_cpu = run.first("holder", "running").cpu
    assert holder_cpu != shared.cpu
    woken = next(e for e in run.states("waiter") if e.t == 3 * MS)
    assert woken.state == "ready"
    assert run.first("holder", "blocked", "sleep").t == 3 * MS
    ran = next(e for e in run.states("waiter") if e.t > woken.t)
    assert (ran.state, ran.t, ran.cpu) == ("running", slice_ns + 2 * MS, holder_cpu)
