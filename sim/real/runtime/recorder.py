"""One append-only record file per process, written through a shared mapping.

A record is one line: `t TAB tid TAB kind TAB field...`, where `t` is
`time.monotonic_ns()` and `tid` the native thread id of the writer. Text
fields (names, printed lines) are escaped so they hold no tab or newline.

The file is a `MAP_SHARED` memory mapping of a sparse file: a record is in the
kernel's page cache the moment it is copied in, with no user-space buffer and no
system call, so a daemon killed by SIGTERM (or SIGKILL) loses nothing it
recorded, and recording costs well under a microsecond. The unused tail of the
file is zero bytes; readers stop at the first NUL.

A child process makes its file only when it records more than a few records
(`SHARED_RECORDS`: its beginning and end, a wait or two): making one costs a
fork child ~0.1-0.2 ms, mostly copy-on-write faults, as much as the rest of its
probes together. Until then its records go to the run's shared file
(`SHARED_NAME`), one `os.write` each (a few µs) to a descriptor opened with
O_APPEND (one atomic append per write, whatever other processes append), each
line led by the writer's pid: `pid TAB t TAB tid TAB kind TAB field...`. The
descriptor is moved to a number of at least `SHARED_FD_MIN`, which a program
does not reuse by accident (the kernel gives the lowest free number); if the
program closes it, the write fails and the child makes its own file. (Checking
it with `os.fstat` before each write cost a fork child ~30 µs, a third of its
probes' cost: the first call of a C function that builds a stat_result faults
in a dozen pages.)

Record kinds (fields after the kind):
  P pid ppid role name daemon [t tid]
                                 this process begins (role: root or child; a
                                 child: t and tid of its parent's start() call)
  H mark [value]                 a milestone: python VERSION (the root), main_begin (executor)
  S pid name daemon method tid   thread tid of this process started a child
                                 process (t: the start() call); written when the
                                 child's exit status is collected, if not 0
  W pool pid index               that child is worker `index` of pool `pool`
  U tid name daemon              this task started a thread (t: the start() call)
  T name daemon role key         this thread begins (role: user, feeder, *_handler)
  t cause                        this thread ends
  B what key timed               a blocking call begins (timed: 1 if it has a timeout)
  E                              the blocking call ends
  M op key crc nbytes            a message: put (queue), w (bytes written), r (bytes read)
  O kind key fields...           an object was created
  N key name                     the program named an object
  J op pool job chunk kind       a pool job event
  X text                         a line printed on stdout
  Z code cause                   this process ends (its exit code and why)
  R pid code                     a child's exit status was collected (Popen.poll)
  K pid signal context           a signal was sent to a child (context: daemon, terminate, pool)
  C cpu_ns wait_ns               /proc schedstat of this thread
  A kind key text                a warning (key: the object it concerns, if any)
"""

from __future__ import annotations

import mmap
import os
import threading
import time
from collections.abc import Callable

DIR_ENV = "PROCSIM_PROBE_DIR"
ROOT_ENV = "PROCSIM_PROBE_ROOT"
RUN_ENV = "PROCSIM_RUN_ID"
SCHEDSTAT_ENV = "PROCSIM_PROBE_SCHEDSTAT"  # "1": record C (only the kernel trace's check reads it)
SUFFIX = ".rec"
SHARED_NAME = "tasks.shared"  # not *.rec: its lines start with the writer's pid
# A child's first records (its beginning, end, a wait or two) go to the shared
# file; one that records more makes a file of its own.
SHARED_RECORDS = 8
SHARED_FD_MIN = 512
_INITIAL_SIZE = 1 << 20

_now = time.monotonic_ns
_tid = threading.get_native_id
_thread_prefix = threading.local()  # "\t<tid>\t" of the calling thread


def escape(text: str) -> str:
    """A text field with no tab or newline (backslash-escaped)."""
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return (
            text.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return text


def unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    chars = iter(text)
    for ch in chars:
        if ch == "\\":
            nxt = next(chars, "")
            out.append({"t": "\t", "n": "\n", "r": "\r"}.get(nxt, nxt))
        else:
            out.append(ch)
    return "".join(out)


def _open_shared(directory: str) -> int:
    """The run's shared file, opened for appending at a descriptor number of at
    least `SHARED_FD_MIN` if the process may have one that high; -1 if it
    cannot be opened."""
    try:
        fd = os.open(
            f"{directory}/{SHARED_NAME}",
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
            0o600,
        )
    except OSError:
        return -1
    try:
        import fcntl
    except ImportError:  # no fcntl (Windows): it stays where it is
        return fd
    try:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, SHARED_FD_MIN)
    except OSError:  # a descriptor limit below SHARED_FD_MIN
        return fd
    os.close(fd)
    return high


class Recorder:
    """The record file of the current process.

    Inactive until `activate()`: a process that never runs a task of the
    program (the resource tracker, the forkserver) leaves no file. A forked
    child inherits the recorder disabled; multiprocessing's bootstrap of the
    child begins its task (`begin_task`), and its first record beyond the
    shared ones makes a file of its own.

    `line` is the hot path (records written per message or pool job): one
    clock read, one f-string, one encode and one C call. Its closures are made
    once and shared by every forked descendant; activating swaps the file they
    write to. Each page a fork child first writes costs it a copy-on-write
    fault (~3-5 µs here), so the child's share of the work is kept small: at
    the fork itself two C calls (`valid.clear`, which disables the inherited
    writer so the child never writes into its parent's file, and
    `deferred.clear`); a write to the shared file for each of its first
    records; at activation, if it comes, a file and a few stores.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._pid = 0  # the process the current file belongs to
        valid: list[bool] = []  # [True] while `line` may write to the current file
        # [n] in a task process whose own file is not made yet: n more records
        # may go to the shared file, the next one makes the file.
        deferred: list[int] = []
        os.register_at_fork(after_in_child=valid.clear)
        os.register_at_fork(after_in_child=deferred.clear)
        self._deferred = deferred
        self._shared = _open_shared(directory)
        local = _thread_prefix
        activate, share = self.activate, self._to_shared
        # The current file's mapping, its write (one C call under the GIL:
        # records never interleave) and the lock for growing it; `retarget`
        # sets them. Closure cells: a list would cost the hot path a lookup.
        mm: mmap.mmap | None = None
        write: Callable[[bytes], int] = len
        grow = threading.Lock()

        def retarget(new: mmap.mmap) -> None:
            nonlocal mm, write, grow
            mm, write, grow = new, new.write, threading.Lock()
            valid.append(True)

        def slow(text: str) -> None:
            data = text.encode("utf-8", "backslashreplace")
            with grow:
                assert mm is not None
                while True:
                    try:
                        mm.write(data)
                        return
                    except ValueError:  # full: double the file (others may write meanwhile)
                        size = len(mm)
                        while size - mm.tell() < len(data):
                            size *= 2
                        mm.resize(size)

        def line_at(t: int, body: str) -> None:
            if not valid:
                if not deferred:
                    return  # not a task of the program, or not begun yet
                if share(t, body):
                    return
                activate()
            try:
                prefix = local.text
            except AttributeError:  # gettid() is a system call: once per thread
                prefix = local.text = f"\t{_tid()}\t"
            text = f"{t}{prefix}{body}\n"
            try:
                write(text.encode())
            except (ValueError, UnicodeEncodeError):  # full, or a lone surrogate
                slow(text)

        def line(body: str) -> None:  # line_at(_now(), body), inlined: the hot path
            if not valid:
                line_at(_now(), body)
                return
            try:
                prefix = local.text
            except AttributeError:
                prefix = local.text = f"\t{_tid()}\t"
            text = f"{_now()}{prefix}{body}\n"
            try:
                write(text.encode())
            except (ValueError, UnicodeEncodeError):
                slow(text)

        self._retarget = retarget
        self.line: Callable[[str], None] = line
        self.line_at: Callable[[int, str], None] = line_at

    def activate(self) -> None:
        """Make this process's own file; its records go there from now on."""
        pid = os.getpid()
        if self._pid == pid:
            return
        self._pid = pid
        self._deferred.clear()
        path = f"{self.directory}/{pid}-{_now()}{SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, _INITIAL_SIZE)
            mm = mmap.mmap(fd, _INITIAL_SIZE)
        finally:
            os.close(fd)  # the mapping keeps the file
        _thread_prefix.text = f"\t{_tid()}\t"  # after a fork: the forking thread's tid is not ours
        self._retarget(mm)

    def begin_task(self, body: str) -> None:
        """This process begins a task of the program (`body`: its P record).
        Its first `SHARED_RECORDS` records go to the shared file, the next makes
        its own file; `Thread.start` must call `ensure_file` first, so that two
        threads never make it at once."""
        if self._pid != os.getpid():
            self._deferred[:] = [SHARED_RECORDS]
        if not self._to_shared(_now(), body):  # as end_task, without its call
            self.line(body)

    def end_task(self, body: str) -> None:
        """This process's task ends (`body`: its Z record). `line(body)`, but in
        one call where `line` takes four to reach the shared file: in a fork
        child every function called and object touched costs a copy-on-write
        fault. `begin_task` writes the first record the same way."""
        if not self._to_shared(_now(), body):
            self.line(body)

    def ensure_file(self) -> None:
        if self._deferred:
            self.activate()

    def _to_shared(self, t: int, body: str) -> bool:
        """Append a record to the shared file if this process's records still
        go there; False if they do not or the write fails (the program closed
        the descriptor)."""
        deferred = self._deferred
        if not deferred or deferred[0] <= 0:
            return False
        data = f"{os.getpid()}\t{t}\t{_tid()}\t{body}\n".encode("utf-8", "backslashreplace")
        try:
            if os.write(self._shared, data) != len(data):
                return False
        except OSError:
            return False
        deferred[0] -= 1
        return True

    def emit(self, kind: str, *fields: object) -> None:
        self.line("\t".join((kind, *map(str, fields))))

    def emit_at(self, t: int, kind: str, *fields: object) -> None:
        self.line_at(t, "\t".join((kind, *map(str, fields))))
