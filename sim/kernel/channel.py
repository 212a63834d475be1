"""One direction of an OS pipe or socket pair: whole messages, a byte capacity.

The capacities are Linux's: an OS pipe holds 65,536 bytes; a Unix socket pair
charges each message its kernel bookkeeping too, which the model approximates as
1,400 bytes a message in a 235,000-byte buffer (measured: about 95 KB of 1 KiB
messages fit, and 213-233 KB of messages of 16 KiB or more). A message bigger
than the free space is written as far as it fits and the writer blocks until the
reader has taken it, as a blocking write() does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import simpy

from sim.kernel.clock import Clock
from sim.kernel.scheduler import Scheduler
from sim.kernel.tasks import Task
from sim.kernel.waitqueue import WaitQueue

PIPE_CAPACITY = 65_536
SOCKETPAIR_CAPACITY = 235_000
SOCKETPAIR_MESSAGE_OVERHEAD = 1_400
LENGTH_PREFIX = 4  # Connection.send_bytes prefixes each message with its length


# A value, but not frozen: a frozen dataclass takes several times as long to
# build, and the model makes one for every message.
@dataclass(slots=True)
class Message:
    msg: int  # the id that links the send/put to its recv/get in the trace
    size: int  # payload bytes, as pickled


Waiters = Callable[[], set[Task]]


class Channel:
    def __init__(self, env: Clock, scheduler: Scheduler, socket: bool) -> None:
        self.capacity = SOCKETPAIR_CAPACITY if socket else PIPE_CAPACITY
        self.overhead = LENGTH_PREFIX + (SOCKETPAIR_MESSAGE_OVERHEAD if socket else 0)
        self.messages: deque[Message] = deque()
        self.used = 0
        self.readers = WaitQueue(env, scheduler)
        self.writers = WaitQueue(env, scheduler)
        self.taken = WaitQueue(env, scheduler)  # writers of oversized messages
        self.writer_closed = False

    def try_write(self, message: Message) -> bool:
        """Put a whole message in the buffer if it has room (or is empty: a
        message bigger than the whole buffer goes in then)."""
        cost = message.size + self.overhead
        if self.used and self.used + cost > self.capacity:
            return False
        self.messages.append(message)
        self.used += cost
        if self.readers.waiting:
            self.readers.wake_one()
        return True

    def write(
        self, task: Task, message: Message, reason: str, readers: Waiters
    ) -> Generator[simpy.Event, Any, None]:
        """`try_write`, blocking while the buffer is full."""
        while not self.try_write(message):
            yield from self.writers.wait(task, reason, readers)

    def oversized(self, message: Message) -> bool:
        return message.size + self.overhead > self.capacity

    def wait_until_taken(
        self, task: Task, message: Message, reason: str, readers: Waiters
    ) -> Generator[simpy.Event, Any, None]:
        """After writing an `oversized` message: a blocking write() returns only
        once its last byte is in the buffer, which is when the reader takes it."""
        while message in self.messages:
            yield from self.taken.wait(task, reason, readers)

    def try_read(self) -> Message | None:
        """The next message if one is there."""
        if not self.messages:
            return None
        message = self.messages.popleft()
        self.used -= message.size + self.overhead
        if self.writers.waiting:
            self.writers.wake_one()
        if self.taken.waiting:
            self.taken.wake_all()
        if self.messages and self.readers.waiting:
            self.readers.wake_one()
        return message

    def read(
        self, task: Task, reason: str, writers: Waiters, timeout: int | None = None
    ) -> Generator[simpy.Event, Any, Message | None]:
        """The next message, blocking until there is one; None at EOF (writer
        closed, buffer empty) or when `timeout` ns have passed."""
        while True:
            message = self.try_read()
            if message is not None or self.writer_closed:
                return message
            woken = yield from self.readers.wait(task, reason, writers, timeout)
            if not woken:
                return None

    def close_writer(self) -> None:
        self.writer_closed = True
        self.readers.wake_all()
