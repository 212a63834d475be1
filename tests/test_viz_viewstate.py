"""The pure view state: where every task is at a cursor, checked against a
plain replay of the trace, for the shipped scenarios and synthetic traces."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from viz_traces import MS, pool_like, producer_consumer, shipped, shipped_names

from sim.trace import StateChanged, TaskCreated, Trace
from viz import cursor
from viz.index import TraceIndex
from viz.viewstate import GLIDE_FRACTION, Motion, Place, View, place_of, view_at

STILL = Motion(0, 0)


@dataclass
class _Seen:
    state: str
    k: int
    cpu: int | None = None
    reason: str | None = None


def _replay(trace: Trace, ks: list[int]) -> dict[int, dict[str, _Seen]]:
    """The state of every task after the first k events, for each k (in order)."""
    out: dict[int, dict[str, _Seen]] = {}
    seen: dict[str, _Seen] = {}
    wanted = sorted(set(ks))
    i = 0
    for k in range(len(trace.events) + 1):
        while i < len(wanted) and wanted[i] == k:
            out[k] = {name: _Seen(s.state, s.k, s.cpu, s.reason) for name, s in seen.items()}
            i += 1
        if k == len(trace.events):
            break
        ev = trace.events[k]
        if isinstance(ev, TaskCreated):
            seen[ev.task] = _Seen("new", k)
        elif isinstance(ev, StateChanged):
            seen[ev.task] = _Seen(ev.state, k, ev.cpu, ev.reason)
    return out


def _expected_place(s: _Seen) -> Place:
    if s.state == "running":
        return Place("cpu", s.cpu)
    if s.state == "blocked":
        return Place("blocked", s.reason or "?")
    return Place(s.state)  # type: ignore[arg-type]


def _check(view: View, seen: dict[str, _Seen], ix: TraceIndex) -> None:
    assert set(view.tokens) == set(seen)
    for name, s in seen.items():
        assert view.tokens[name].place == _expected_place(s), name

    def in_order(state: str) -> tuple[str, ...]:
        return tuple(n for n, s in sorted(seen.items(), key=lambda x: x[1].k) if s.state == state)

    # The ready lane is in queue order: the order the tasks became ready.
    assert view.ready == in_order("ready")
    assert view.new == in_order("new")
    assert view.terminated == in_order("terminated")
    for cpu, members in enumerate(view.cpus):
        assert set(members) == {n for n, s in seen.items() if s.state == "running" and s.cpu == cpu}
    blocked = {n: s for n, s in seen.items() if s.state == "blocked"}
    # Each lane is titled with the reason in the trace and holds exactly its tasks.
    assert {lane.reason for lane in view.lanes if lane.members} == {
        s.reason for s in blocked.values()
    }
    for lane in view.lanes:
        expect = [
            n for n, s in sorted(blocked.items(), key=lambda x: x[1].k) if s.reason == lane.reason
        ]
        assert list(lane.members) == expect
    # Lanes keep the order their reasons first appeared in.
    orders = [ix.reason_order[lane.reason] for lane in view.lanes]
    assert orders == sorted(orders)


def _sample_ks(n: int) -> list[int]:
    if n <= 400:
        return list(range(n + 1))
    return sorted({n * i // 80 for i in range(81)} | {1, 2, 3, n - 1})


@pytest.mark.parametrize("name", shipped_names())
def test_every_task_is_in_the_place_of_its_state(name: str) -> None:
    trace = shipped(name)
    ix = TraceIndex(trace)
    ks = _sample_ks(len(trace.events))
    truth = _replay(trace, ks)
    for k in ks:
        t = ix.times[k - 1] if k else 0
        _check(view_at(ix, t, k, STILL), truth[k], ix)


@pytest.mark.parametrize("name", ["textbook_fcfs", "textbook_rr"])
def test_dispatch_takes_the_head_of_the_ready_lane(name: str) -> None:
    """Under FIFO policies on one CPU the scheduler's pick is the head of the
    drawn queue. (On several CPUs a context switch can make a task picked
    first start running after one picked later.)"""
    trace = shipped(name)
    ix = TraceIndex(trace)
    checked = 0
    for k, ev in enumerate(trace.events):
        if isinstance(ev, StateChanged) and ev.state == "running":
            view = view_at(ix, ev.t, k, STILL)
            if ev.task in view.ready:
                assert view.ready[0] == ev.task
                checked += 1
    assert checked >= 3


def test_mid_interval_times_agree_with_event_counts() -> None:
    trace = producer_consumer()
    ix = TraceIndex(trace)
    for t in range(0, 20 * MS, MS // 4):
        k = ix.event_index_at(t)
        _check(view_at(ix, t, k, Motion.for_speed(0.001)), _replay(trace, [k])[k], ix)


def test_a_gliding_token_heads_for_its_next_place_and_lands_on_time() -> None:
    ix = TraceIndex(producer_consumer())
    motion = Motion(glide_ns=MS, flight_ns=MS)
    # p1 blocks on q.get at 7 ms and becomes ready at 10 ms (then runs, same instant).
    before = view_at(ix, 10 * MS - MS // 4, ix.event_index_at(10 * MS - MS // 4), motion)
    p1 = before.tokens["p1"]
    assert p1.place == Place("blocked", "q.get")
    # Several transitions at one instant: it aims straight for the last (CPU 1).
    assert p1.dest == Place("cpu", 1)
    assert p1.progress == pytest.approx(0.75)
    at = view_at(ix, 10 * MS, ix.event_index_at(10 * MS), motion)
    assert at.tokens["p1"].place == Place("cpu", 1)
    assert at.tokens["p1"].dest is None
    # A stay shorter than the glide: the glide takes at most its last part.
    d1 = view_at(ix, 7 * MS + 100, ix.event_index_at(7 * MS + 100), Motion(10 * MS, 0))
    assert d1.tokens["d1"].progress == 0.0 or d1.tokens["d1"].dest is not None
    assert GLIDE_FRACTION <= 0.5


def test_without_motion_nothing_moves() -> None:
    ix = TraceIndex(producer_consumer())
    for k in range(len(ix.events) + 1):
        view = view_at(ix, ix.times[k - 1] if k else 0, k, STILL)
        assert all(tv.dest is None and tv.progress == 0 for tv in view.tokens.values())
        assert view.flights == ()


def test_tokens_move_up_the_queue_as_the_head_leaves() -> None:
    ix = TraceIndex(pool_like(6, 12, cpus=1, job_ns=MS))
    motion = Motion(glide_ns=MS // 2, flight_ns=0)
    moved = False
    for k in range(len(ix.events)):
        t = ix.times[k]
        view = view_at(ix, t - 1, ix.event_index_at(t - 1), motion)
        ranks = [view.tokens[n].pos for n in view.ready]
        assert ranks == sorted(ranks)
        # A token is never drawn behind its rank, nor ahead of the tokens before
        # it: it has moved up by exactly the progress of those leaving ahead.
        for i in range(len(view.ready)):
            ahead = sum(view.tokens[m].progress for m in view.ready[:i])
            assert ranks[i] == pytest.approx(i - ahead)
            assert 0 <= ranks[i] <= i
        moved = moved or any(r != i for i, r in enumerate(ranks))
    assert moved


def test_messages_fly_into_the_mailbox_and_out_to_the_receiver() -> None:
    ix = TraceIndex(producer_consumer())
    motion = Motion(glide_ns=0, flight_ns=MS // 2)
    # p2 puts message 1 on q at 9 ms; p1 gets it at 12 ms.
    just_after_put = view_at(ix, 9 * MS + MS // 4, ix.event_index_at(9 * MS + MS // 4), motion)
    [out] = just_after_put.flights
    assert (out.leg, out.journey.src_task, out.journey.dst_task) == ("to_mailbox", "p2", "p1")
    assert out.progress == pytest.approx(0.5)
    assert dict(just_after_put.mailboxes)["q"] == 1
    resting = view_at(ix, 11 * MS, ix.event_index_at(11 * MS), motion)
    assert resting.flights == ()
    assert dict(resting.mailboxes)["q"] == 1
    landing = view_at(ix, 12 * MS - MS // 4, ix.event_index_at(12 * MS - MS // 4), motion)
    [inbound] = landing.flights
    assert inbound.leg == "from_mailbox"
    assert inbound.progress == pytest.approx(0.5)
    after = view_at(ix, 12 * MS, ix.event_index_at(12 * MS), motion)
    assert dict(after.mailboxes)["q"] == 0
    assert after.flights == ()


def test_pool_jobs_are_counted_in_their_mailboxes() -> None:
    ix = TraceIndex(pool_like(4, 20, cpus=2))
    end = view_at(ix, ix.end_t, len(ix.events), STILL)
    counts = dict(end.mailboxes)
    assert counts["pool submitted"] == 0  # every job started
    assert counts["pool results"] == 20  # no callback took the results
    middle = len(ix.events) // 2
    mid = dict(view_at(ix, ix.times[middle], middle, STILL).mailboxes)
    assert 0 < mid["pool submitted"] < 20


def test_a_killed_daemon_keeps_its_exit_code_and_cause() -> None:
    ix = TraceIndex(producer_consumer())
    end = view_at(ix, ix.end_t, len(ix.events), STILL)
    d1 = end.tokens["d1"]
    assert (d1.place, d1.exit_code, d1.cause) == (Place("terminated"), -15, "killed_as_daemon")
    assert end.terminated[-2:] == ("d1", "main")


# --- the cursor -----------------------------------------------------------------


def test_stepping_applies_exactly_one_event_and_back_undoes_it() -> None:
    ixs = [TraceIndex(producer_consumer())]
    cur = cursor.start(ixs)
    seen = [cur]
    while cur.ks[0] < len(ixs[0].events):
        nxt = cursor.step_forward(ixs, cur)
        assert nxt.ks[0] == cur.ks[0] + 1
        assert nxt.t == ixs[0].times[cur.ks[0]]
        seen.append(nxt)
        cur = nxt
    assert cursor.step_forward(ixs, cur) == cur
    for prev in reversed(seen[:-1]):
        cur = cursor.step_back(ixs, cur)
        assert cur.ks == prev.ks
    assert cur == cursor.start(ixs)


def test_stepping_two_traces_interleaves_them_on_one_clock() -> None:
    a = TraceIndex(producer_consumer())
    b = TraceIndex(shipped("reference_queue"))
    ixs = [a, b]
    cur = cursor.start(ixs)
    times: list[int] = []
    while cur != cursor.finish(ixs) and len(times) < 10_000:
        nxt = cursor.step_forward(ixs, cur)
        assert sum(nxt.ks) == sum(cur.ks) + 1
        times.append(nxt.t)
        cur = nxt
    assert times == sorted(times)
    assert len(times) == len(a.events) + len(b.events)


def test_at_time_applies_every_event_up_to_that_time() -> None:
    ixs = [TraceIndex(producer_consumer())]
    cur = cursor.at_time(ixs, 9 * MS)
    assert all(t <= 9 * MS for t in ixs[0].times[: cur.ks[0]])
    assert ixs[0].times[cur.ks[0]] > 9 * MS
    assert cursor.at_time(ixs, 10**12).t == ixs[0].end_t


def test_place_of_covers_every_state() -> None:
    from viz.index import Transition

    assert place_of(Transition(0, 0, "running", cpu=2)) == Place("cpu", 2)
    assert place_of(Transition(0, 0, "blocked", reason="gil")) == Place("blocked", "gil")
    assert place_of(Transition(0, 0, "blocked")) == Place("blocked", "?")
    assert place_of(Transition(0, 0, "running")) == Place("cpu", None)
    assert place_of(Transition(0, 0, "new")) == Place("new")
    assert place_of(Transition(0, 0, "ready")) == Place("ready")
    assert place_of(Transition(0, 0, "terminated")) == Place("terminated")
