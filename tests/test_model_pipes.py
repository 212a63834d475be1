"""Golden tests of Pipe in the model: a full pipe blocks send, the capacities of
an OS pipe and of a socket pair, EOF, and the race warning."""

from __future__ import annotations

import pytest
from model_helpers import MS, Run, machine, run_file, run_text

from sim.program import Costs
from sim.trace import MessageEvent, StateChanged

KIB = 1024
ONE_WAY_CAPACITY = 65_536  # bytes an OS pipe holds before write() blocks (Linux)


def pickle_ns(costs: Costs, size: int) -> int:
    return round(size * costs.per_byte_ns)


def test_full_pipe_blocks_send_until_the_reader_drains_it() -> None:
    run = run_file("pipe_full.yaml")
    costs = run.scenario.machine.costs
    size = 40 * KIB
    send_cpu = costs.pipe_send_ns + pickle_ns(costs, size)
    first = costs.start_call_ns + costs.first_start_ns  # the first start() imports Popen
    start = first + costs.start_call_ns  # both children started
    # Each child exists from its fork, start_return before its start() ends.
    # The sender runs its start-up on the second CPU at once.
    sender_up = first - costs.start_return_ns + costs.start_cpu_ns["fork"]
    # The first 40 KiB message fits in 64 KiB; the second does not.
    first_sent = sender_up + send_cpu
    blocked_at = first_sent + send_cpu
    # The receiver is forked while both CPUs are busy: placed on the CPU other
    # than main's, the sender's, it waits there (the CPU main leaves as it joins
    # may take it only after balance_delay) until the sender blocks.
    settings = run.scenario.machine.settings
    assert blocked_at - (start - costs.start_return_ns) < settings.linux_balance_delay_ns
    receiver_up = blocked_at + costs.start_cpu_ns["fork"]
    # The receiver sleeps 50 ms (and wakes, `sleep`), then each recv takes a
    # message out of the pipe (freeing room for the next send) before unpickling
    # it. Each after the first comes 5 ms of computation after the one before: cold.
    woke = receiver_up + 50 * MS + costs.sleep_ns
    takes = [woke + costs.pipe_recv_ns]
    for _ in range(3):
        received = takes[-1] + pickle_ns(costs, size)
        takes.append(received + 5 * MS + costs.pipe_recv_cold_ns)
    sends = run.messages("tx", "send")
    recvs = run.messages("rx", "recv")
    assert [s.t for s in sends] == [first_sent, takes[0], takes[1], takes[2]]
    assert [r.t for r in recvs] == [t + pickle_ns(costs, size) for t in takes]
    assert [r.msg for r in recvs] == [s.msg for s in sends]
    assert run.intervals("sender", "blocked") == [
        (blocked_at, takes[0], "tx.send"),
        (takes[0] + send_cpu, takes[1], "tx.send"),
        (takes[1] + send_cpu, takes[2], "tx.send"),
    ]
    assert bytes_in_pipe_peak(run, "tx", "rx") <= ONE_WAY_CAPACITY


def bytes_in_pipe_peak(run: Run, send_end: str, recv_end: str) -> int:
    """The most payload bytes sent and not yet taken, a recv counting from when
    its message left the pipe (before unpickling)."""
    costs = run.scenario.machine.costs
    deltas: dict[int, int] = {}
    for m in run.messages(send_end, "send"):
        deltas[m.t] = deltas.get(m.t, 0) + m.size
    for m in run.messages(recv_end, "recv"):
        t = m.t - pickle_ns(costs, m.size)
        deltas[t] = deltas.get(t, 0) - m.size
    held = peak = 0
    for t in sorted(deltas):
        held += deltas[t]
        peak = max(peak, held)
    return peak


def sends_before_reader_wakes(size: int, duplex: bool) -> int:
    """How many `size`-byte messages a sender gets into the pipe while the reader
    sleeps: the pipe's capacity for that message size."""
    run = run_text(f"""
name: capacity
{machine(2)}
objects:
  pp: {{type: pipe, duplex: {str(duplex).lower()}, ends: [rx, tx]}}
functions:
  sender: [{{repeat: {{times: 300, do: [{{send: {{end: tx, size: {size}B}}}}]}}}}]
  receiver: [{{sleep: 1s}}, {{repeat: {{times: 300, do: [{{recv: rx}}]}}}}]
main:
  - spawn: {{name: s, target: sender}}
  - spawn: {{name: r, target: receiver}}
  - join: [s, r]
""")
    assert run.end.status == "complete"
    assert len(run.messages("rx", "recv")) == 300
    return sum(1 for m in run.messages("tx", "send") if m.t < 1000 * MS)


@pytest.mark.parametrize(
    ("size", "fits"),
    [(16 * KIB, 3), (20_000, 3), (32 * KIB, 1), (40 * KIB, 1), (60_000, 1)],
)
def test_one_way_pipe_holds_65536_bytes(size: int, fits: int) -> None:
    # Whole messages (a 4-byte length prefix each) up to 65,536 bytes; a message
    # bigger than the room left blocks. Connection.send_bytes on Linux got the
    # same counts for these sizes (CPython 3.11). Smaller messages fit fewer in
    # reality (48 of 1 KiB, not 63; 10 of 4 KiB, not 15): the kernel's pipe
    # buffer is 16 pages and writes do not always share a page.
    assert sends_before_reader_wakes(size, duplex=False) == fits
    assert fits * (size + 4) <= ONE_WAY_CAPACITY < (fits + 1) * (size + 4)


# Messages of each size that Connection.send_bytes got into one direction of a
# Pipe() (a Unix socket pair) before blocking, with nobody reading: CPython 3.11,
# Linux 6.18, the project's machine kind. MODEL_NOTES.md: about 95 KB of 1 KiB
# messages, 213-233 KB of bigger ones (64 KiB messages: 3, so 197 KB, here).
SOCKETPAIR_MEASURED = {1 * KIB: 93, 4 * KIB: 44, 16 * KIB: 13, 32 * KIB: 7, 64 * KIB: 3}


@pytest.mark.parametrize("size", sorted(SOCKETPAIR_MEASURED))
def test_duplex_pipe_holds_what_a_socket_pair_holds(size: int) -> None:
    measured = SOCKETPAIR_MEASURED[size]
    modelled = sends_before_reader_wakes(size, duplex=True)
    assert abs(modelled - measured) <= max(1, round(0.05 * measured)), modelled
    assert modelled * size > ONE_WAY_CAPACITY  # a socket pair holds more than a pipe


def test_recv_at_eof_runs_on_eof_or_exits_with_1() -> None:
    run = run_text(f"""
name: eof
{machine(3)}
objects:
  pp: {{type: pipe, duplex: false, ends: [rx, tx]}}
  pq: {{type: pipe, duplex: false, ends: [rx2, tx2]}}
functions:
  handled: [{{recv: rx}}, {{recv: {{end: rx, on_eof: [{{print: closed}}]}}}}]
  unhandled: [{{recv: rx2}}, {{print: never}}]
main:
  - spawn: {{name: a, target: handled}}
  - spawn: {{name: b, target: unhandled}}
  - send: tx
  - sleep: 2ms
  - close: tx
  - close: tx2
  - join: [a, b]
""")
    assert [(o.t, o.task, o.text) for o in run.outputs()] == [(2 * MS, "a", "closed")]
    assert run.intervals("a", "blocked")[-1] == (0, 2 * MS, "rx.recv")
    b_end = run.end_of("b")
    assert (b_end.t, b_end.exit_code, b_end.cause) == (2 * MS, 1, "exception")
    assert "EOFError" in run.warnings("exception")[0].text


def test_pipe_race_is_warned() -> None:
    run = run_file("pipe_race.yaml")
    [race] = run.warnings("race")
    assert "w1" in race.text and "w2" in race.text and "tx" in race.text
    assert "4,096" in race.text  # the messages are big enough to interleave
    # Both writers really were inside send at the warning: the other one's send
    # began before it (its previous one, if any, ended before) and ends after it.
    other = "w2" if race.task == "w1" else "w1"
    sends = [m.t for m in run.messages("tx", "send") if m.task == other]
    assert any(t >= race.t for t in sends)
    assert run.state_at(other, race.t) is not None
    assert len(run.messages("rx", "recv")) == 6
    assert run.end.status == "complete"


def test_pipe_locked_has_no_race_and_a_writer_waits_for_the_lock() -> None:
    run = run_file("pipe_locked.yaml")
    assert run.warnings() == []
    waits = [i for w in ("w1", "w2") for i in run.intervals(w, "blocked") if i[2] == "lock.acquire"]
    assert waits
    assert len(run.messages("rx", "recv")) == 6
    assert run.end.status == "complete"


def ops_off_cpu(run: Run) -> list[tuple[int, str, str]]:
    """(time, task, op) of the message operations recorded by a task that was
    not running at that point of the trace."""
    state: dict[str, str] = {}
    found: list[tuple[int, str, str]] = []
    for e in run.events:
        if isinstance(e, StateChanged):
            state[e.task] = e.state
        elif isinstance(e, MessageEvent) and state.get(e.task) != "running":
            found.append((e.t, e.task, e.op))
    return found


def test_a_sender_completes_its_send_only_once_it_runs_again() -> None:
    run = run_file("pipe_full.yaml")
    assert ops_off_cpu(run) == []


def test_a_message_bigger_than_the_buffer_is_received_after_it_is_sent() -> None:
    # One CPU: the sender blocks on its 300,000-byte message (the socket pair
    # holds 235,000 bytes, and 64 bytes are waiting) until the receiver has
    # taken the first message; the receiver then runs on, takes the second and
    # computes, while the sender waits for the CPU.
    run = run_text(f"""
name: oversized
{machine(1, policy="fcfs", pipe_send="8us", pipe_recv="8us")}
objects:
  pp: {{type: pipe, ends: [a, b]}}
functions:
  sender: [{{send: {{end: a, size: 64B}}}}, {{send: {{end: a, size: 300000B}}}}]
  receiver: [{{recv: b}}, {{recv: b}}, {{compute: 1ms}}]
main:
  - spawn: {{name: s, target: sender}}
  - spawn: {{name: r, target: receiver}}
  - join: [s, r]
""")
    position = {id(e): i for i, e in enumerate(run.events)}
    sent = {m.msg: m for m in run.messages("a", "send")}
    received = {m.msg: m for m in run.messages("b", "recv")}
    assert set(sent) == set(received) == {1, 2}
    for msg, recv in received.items():
        assert recv.t >= sent[msg].t, (msg, sent[msg], recv)
        assert position[id(recv)] > position[id(sent[msg])]


def test_first_send_and_recv_of_a_process_cost_more_once() -> None:
    run = run_text(f"""
name: first-pipe-calls
{machine(3, pipe_send="5us", pipe_recv="5us", first_send="40us", first_recv="30us")}
objects:
  c: {{type: pipe, ends: [a, b]}}
functions:
  sender: [{{send: {{end: a, size: 0B}}}}, {{send: {{end: a, size: 0B}}}}]
  receiver: [{{compute: 1ms}}, {{recv: b}}, {{recv: b}}]
main:
  - spawn: {{name: s, target: sender}}
  - spawn: {{name: r, target: receiver}}
  - join: [s, r]
""")
    costs = run.scenario.machine.costs
    first_send = costs.first_send_ns + costs.pipe_send_ns
    sends = [m.t for m in run.messages("a", "send")]
    assert sends == [first_send, first_send + costs.pipe_send_ns]
    first_recv = MS + costs.first_recv_ns + costs.pipe_recv_ns
    assert [m.t for m in run.messages("b", "recv")] == [
        first_recv,
        first_recv + costs.pipe_recv_ns,
    ]
