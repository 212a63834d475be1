"""multiprocessing.Pipe: two Connection ends over a socket pair (duplex) or an
OS pipe (`duplex=False`: the first end receives, the second sends).

`send` pickles in the caller and writes the whole message, blocking while the
buffer is full; `recv` blocks until a whole message is there, and raises
EOFError once the other end is closed and nothing is left. A Connection is not
safe to use from two tasks at once: overlapping sends (or receives) on one end
by tasks holding no lock are reported as a race, since writes over 4,096 bytes
(PIPE_BUF) can interleave.

Simplification: an end is one object shared by every process; `close` closes it
for all of them (in CPython each process holds its own copy after fork, and EOF
needs every copy of the writing end closed).
"""

from __future__ import annotations

from sim import program as p
from sim.kernel.channel import Channel, Message
from sim.kernel.clock import Steps
from sim.kernel.runtime import Runtime
from sim.kernel.tasks import ProgramError, Task
from sim.trace import MessageEvent, WarningEvent

PIPE_BUF = 4_096  # writes up to this size are atomic


class SimPipe:
    def __init__(self, rt: Runtime, definition: p.PipeDef) -> None:
        self.rt = rt
        first, second = definition.ends
        if definition.duplex:
            to_second = Channel(rt.env, rt.scheduler, socket=True)
            to_first = Channel(rt.env, rt.scheduler, socket=True)
            self.reads = {first: to_first, second: to_second}
            self.writes = {first: to_second, second: to_first}
        else:
            channel = Channel(rt.env, rt.scheduler, socket=False)
            self.reads = {first: channel}
            self.writes = {second: channel}
        self.peer = {first: second, second: first}
        self.closed: set[str] = set()
        # Tasks inside a send / recv on each end, for the race check.
        self._active: dict[tuple[str, str], set[Task]] = {}
        self._warned: set[tuple[str, str, frozenset[str]]] = set()

    def _check_open(self, end: str) -> None:
        if end in self.closed:
            raise ProgramError("OSError", f"{end}: handle is closed")

    def _enter(self, task: Task, op: str, end: str, size: int) -> None:
        active = self._active.setdefault((op, end), set())
        for other in active:
            if task.locks_held and other.locks_held:
                continue
            key = (op, end, frozenset((task.name, other.name)))
            if key in self._warned:
                continue
            self._warned.add(key)
            if op == "send":
                risk = (
                    "messages over 4,096 bytes can interleave and corrupt the stream"
                    if size > PIPE_BUF
                    else "these writes are atomic (4,096 bytes or less), but share the end unsafely"
                )
            else:
                risk = "which of them gets each message is not defined"
            text = f"{other.name} and {task.name} {op} on {end} at once without a lock: {risk}"
            self.rt.sink.emit(WarningEvent(self.rt.env.now, task.name, "race", text))
        active.add(task)

    def _leave(self, task: Task, op: str, end: str) -> None:
        self._active[(op, end)].discard(task)

    def send(self, task: Task, op: p.Send) -> Steps:
        rt = self.rt
        self._enter(task, "send", op.end, op.size)
        try:
            costs = rt.costs
            cost = rt.call_ns(
                task, "send", costs.first_send_ns, costs.pipe_send_ns, costs.pipe_send_cold_ns
            )
            yield from rt.scheduler.work(task, cost + rt.pickle_ns(op.size))
            self._check_open(op.end)
            message = Message(rt.next_message_id(), op.size)
            readers = rt.able_to(("recv", self.peer[op.end]))
            channel, reason = self.writes[op.end], f"{op.end}.send"
            yield from channel.write(task, message, reason, readers)
            # Recorded as the message enters the buffer, so it precedes its recv.
            rt.sink.emit(MessageEvent(rt.env.now, task.name, "send", op.end, message.msg, op.size))
            if channel.oversized(message):
                yield from channel.wait_until_taken(task, message, reason, readers)
        finally:
            self._leave(task, "send", op.end)
            rt.call_done(task)
        yield from rt.scheduler.syscall(task)  # the write

    def recv(self, task: Task, op: p.Recv) -> Steps:
        rt = self.rt
        self._enter(task, "recv", op.end, 0)
        try:
            costs = rt.costs
            cost = rt.call_ns(
                task, "recv", costs.first_recv_ns, costs.pipe_recv_ns, costs.pipe_recv_cold_ns
            )
            yield from rt.scheduler.work(task, cost)
            self._check_open(op.end)
            writers = rt.able_to(("send", self.peer[op.end]), ("close", self.peer[op.end]))
            message = yield from self.reads[op.end].read(task, f"{op.end}.recv", writers)
        finally:
            self._leave(task, "recv", op.end)
            rt.call_done(task)
        yield from rt.scheduler.syscall(task)  # the read
        if message is None:
            yield from rt.scheduler.work(task, 0)
            if op.on_eof is None:
                raise ProgramError("EOFError", f"{op.end}: the other end was closed")
            yield from rt.run_block(task, op.on_eof)
            return
        yield from rt.scheduler.work(task, rt.pickle_ns(message.size))
        rt.sink.emit(MessageEvent(rt.env.now, task.name, "recv", op.end, message.msg, message.size))

    def close(self, task: Task, op: p.Close) -> Steps:
        yield from self.rt.scheduler.work(task, 0)
        self.closed.add(op.end)
        channel = self.writes.get(op.end)
        if channel is not None:
            channel.close_writer()
