"""One append-only record file per process, written through a shared mapping.

A record is one line: `t TAB tid TAB kind TAB field...`, where `t` is
`time.monotonic_ns()` and `tid` the native thread id of the writer. Text
fields (names, printed lines) are escaped so they hold no tab or newline.

The file is a `MAP_SHARED` memory mapping of a sparse file: a record is in the
kernel's page cache the moment it is copied in, with no user-space buffer and no
system call, so a daemon killed by SIGTERM (or SIGKILL) loses nothing it
recorded, and recording costs well under a microsecond. The unused tail of the
file is zero bytes; readers stop at the first NUL.

Record kinds (fields after the kind):
  P pid ppid role name daemon    this process begins (role: root or child)
  H mark                         a milestone: main_begin, code_end
  S pid name daemon method       this task started a child process (t: the start() call)
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
  R pid code                     a child was reaped with this exit code
  K pid signal context           a signal was sent to a child (context: daemon, terminate, pool)
  C cpu_ns wait_ns               /proc schedstat of this thread
  A kind key text                a warning (key: the object it concerns, if any)
"""

from __future__ import annotations

import mmap
import os
import threading
import time

DIR_ENV = "PROCSIM_PROBE_DIR"
ROOT_ENV = "PROCSIM_PROBE_ROOT"
RUN_ENV = "PROCSIM_RUN_ID"
SUFFIX = ".rec"
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


class Recorder:
    """The record file of the current process.

    Inactive until `activate()`: a process that never runs a task of the
    program (the resource tracker, the forkserver) leaves no file. After a
    fork the child starts inactive again; multiprocessing's bootstrap of the
    child activates it with a file of its own.
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._mm: mmap.mmap | None = None
        self._grow = threading.Lock()
        self.path = ""

    @property
    def active(self) -> bool:
        return self._mm is not None

    def activate(self) -> None:
        if self._mm is not None:
            return
        self.path = os.path.join(self.directory, f"{os.getpid()}-{_now()}{SUFFIX}")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, _INITIAL_SIZE)
            self._mm = mmap.mmap(fd, _INITIAL_SIZE)
        finally:
            os.close(fd)  # the mapping keeps the file

    def forget_after_fork(self) -> None:
        """In a forked child: drop the parent's mapping without writing to it."""
        mm, self._mm = self._mm, None
        self._grow = threading.Lock()
        _thread_prefix.__dict__.clear()  # the forking thread's tid is not ours
        if mm is not None:
            mm.close()

    def emit(self, kind: str, *fields: object) -> None:
        self.emit_at(_now(), kind, *fields)

    def emit_at(self, t: int, kind: str, *fields: object) -> None:
        body = "\t".join((kind, *map(str, fields)))
        self._write(f"{t}\t{_tid()}\t{body}\n")

    def line(self, body: str) -> None:
        """A record from its kind and fields already joined by tabs: the fast
        path for the records written once per message or job."""
        mm = self._mm
        if mm is None:
            return
        try:
            prefix = _thread_prefix.text
        except AttributeError:  # gettid() is a system call: once per thread
            prefix = _thread_prefix.text = f"\t{_tid()}\t"
        data = f"{_now()}{prefix}{body}\n".encode("utf-8", "backslashreplace")
        try:
            mm.write(data)
        except ValueError:
            self._enlarge(mm, len(data))
            mm.write(data)

    def _write(self, text: str) -> None:
        mm = self._mm
        if mm is None:
            return
        data = text.encode("utf-8", "backslashreplace")
        try:
            mm.write(data)  # one C call under the GIL: records never interleave
        except ValueError:  # full: double the file and retry
            self._enlarge(mm, len(data))
            mm.write(data)

    def _enlarge(self, mm: mmap.mmap, need: int) -> None:
        with self._grow:
            if len(mm) - mm.tell() >= need:
                return
            size = len(mm)
            while size - mm.tell() < need:
                size *= 2
            mm.resize(size)
