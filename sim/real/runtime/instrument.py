"""Probes inside multiprocessing: patches that record what every task does.

`install()` wraps, in the running interpreter, the places where a task of a
multiprocessing program starts, blocks, exchanges a message or ends:
Process start/bootstrap/join/terminate and the collection of its exit
status (Popen.poll), Thread start/run/join and interpreter
shutdown, `time.sleep`, Queue/JoinableQueue/SimpleQueue, Connection byte
transfers, Lock/RLock/Semaphore/Event/Condition/Barrier, Pool (workers, helper
threads, submissions, results, callbacks) and `print`. Fork children
inherit the patches; spawn and forkserver children get them from the
`sitecustomize` bootstrap. No signal handler is installed and no exit path is
changed: a program behaves as it would without probes.

A blocking call is recorded only when it really has to wait: each wrapper first
tries the operation without blocking (put_nowait, acquire(False), poll) and
records a span only if that fails. Spans nest (a Queue.get waits inside a lock
acquire); only the outermost one is recorded, as it names the program's reason.
A Pool's machinery is probed as little as it can be (see `_wrap_print`): its
helper threads' and workers' waits for work are left to the merge to infer.

Objects are identified across processes by what the kernel shares: a pipe's or
socket's inode for connections and queues, a semaphore's name (or, in fork
children, its address) for locks. The creating process records the object with a
name guessed from the creating line (`q = Queue()` gives `q`); the scenario
executor renames objects to their scenario names.
"""

from __future__ import annotations

import atexit
import builtins
import itertools
import multiprocessing
import multiprocessing.process as mp_process
import os
import stat
import sys
import threading
import time
import types
import weakref
from collections.abc import Callable
from importlib.machinery import SourceFileLoader, SourcelessFileLoader
from multiprocessing.reduction import ForkingPickler

from .recorder import SCHEDSTAT_ENV, Recorder, escape

# Every process of a run imports this module at start-up (a spawn child too,
# whose bare start-up is ~40 ms): `typing`, `linecache` and `re` (for guessing
# names) cost milliseconds there, so `typing` is left to the type checker and
# the others are imported when a name is first guessed; multiprocessing's
# connection, queues, synchronize, popen_fork and pool modules (with zlib,
# select, queue, tempfile, ...) are patched when the program imports them
# (see `_when_imported`), not imported for it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import Any

_rec: Recorder | None = None
_cpu_check = False  # record /proc schedstat at each task's end (see _schedstat)
_emit: Callable[..., None] = lambda *_a: None  # noqa: E731 - replaced by install()
_emit_at: Callable[..., None] = lambda *_a: None  # noqa: E731
_line: Callable[[str], None] = lambda _body: None  # noqa: E731
_tls = threading.local()
# threading._shutdown is probed from the first Thread.start on: a process that
# never starts a thread has none to wait for at its exit, and a fork child
# paid for the probe there in copy-on-write faults (5 a child, measured).
_shutdown_probed = False
_pools: list[weakref.ref[Any]] = []
_counters: dict[str, itertools.count[int]] = {}
_now = time.monotonic_ns
_orig_sleep = time.sleep
# Set when their modules are patched (see _patch_connection, _patch_queues).
_plain_send_bytes: Any = None
_plain_recv_bytes: Any = None
_plain_simple_get: Any = None
_crc32: Callable[[Any], int] = lambda _b: 0  # noqa: E731 - zlib.crc32
_select: Any = None  # the select module
_Full: type[Exception] = Exception  # queue.Full

_MP_DIR = os.path.dirname(multiprocessing.__file__) + os.sep
_RT_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_ASSIGN = r"\s*((?:[A-Za-z_][\w.]*\s*,\s*)*[A-Za-z_][\w.]*)\s*(?::[^=]*)?=(?!=)"
_WITH_AS = r".*\bas\s+([A-Za-z_]\w*)\s*[:,)]"
_patterns: list[re.Pattern[str]] = []  # _ASSIGN and _WITH_AS, once compiled
PIPE_BUF = 4096
# On a Process, set by its start() for its first record (P): "<TAB>child<TAB>
# name<TAB>daemon<TAB>t<TAB>tid" (t and tid: the start() call's); and, only if
# the starting thread was inside a probe then, _RESET: the child resets its
# thread state (each write a fork child makes costs it a copy-on-write fault).
_STARTED = "_procsim_started"
_RESET = "_procsim_reset"
_HANDLERS = ("_handle_workers", "_handle_tasks", "_handle_results")


# --- spans -------------------------------------------------------------------


def begin(what: str, key: object = "", timed: bool = False) -> bool:
    """A blocking call starts; True when it is the outermost one (recorded)."""
    depth = getattr(_tls, "depth", 0)
    _tls.depth = depth + 1
    if depth:
        return False
    _line(f"B\t{what}\t{key}\t{1 if timed else 0}")
    return True


def end(recorded: bool) -> None:
    _tls.depth = getattr(_tls, "depth", 1) - 1
    if recorded:
        _line("E")


def _inside() -> str:
    inside: str = getattr(_tls, "inside", "")
    return inside


# --- names and keys ----------------------------------------------------------


def _guess_names(count: int, obj: object = None) -> list[str]:
    """Names from the line of the program that created the object."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith((_MP_DIR, _RT_DIR)):
        frame = frame.f_back  # type: ignore[assignment]
    # The object's own subclass __init__ (concurrent.futures' _SafeQueue) is not
    # the creating line; the caller's is (`self._call_queue = _SafeQueue(...)`).
    while (
        obj is not None
        and frame is not None
        and frame.f_code.co_name == "__init__"
        and frame.f_locals.get("self") is obj
    ):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return []
    import linecache
    import re

    if not _patterns:
        _patterns[:] = [re.compile(_ASSIGN), re.compile(_WITH_AS)]
    assign, with_as = _patterns
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    match = assign.match(line)
    if match:
        targets = [t.strip().rsplit(".", 1)[-1] for t in match.group(1).split(",")]
        if len(targets) == count:
            return targets
    match = with_as.match(line)
    if match and count == 1:
        return [match.group(1)]
    return []


def _fallback(kind: str) -> str:
    counter = _counters.setdefault(kind, itertools.count(1))
    return f"{kind}{next(counter)}"


def _name(kind: str, obj: object) -> str:
    guessed = _guess_names(1, obj)
    return guessed[0] if guessed else _fallback(kind)


def _conn_key(conn: Any) -> str:
    """`s<inode>` for a socket end, `p<inode>r|w` for a pipe end; '' if unknown."""
    attrs = conn.__dict__
    key: str | None = attrs.get("_procsim_key")
    if key is None:
        key = ""
        handle = attrs.get("_handle")
        if handle is not None:
            try:
                st = os.fstat(handle)
            except OSError:
                pass
            else:
                if stat.S_ISSOCK(st.st_mode):
                    key = f"s{st.st_ino}"
                elif stat.S_ISFIFO(st.st_mode):
                    key = f"p{st.st_ino}{'r' if conn.readable else 'w'}"
        attrs["_procsim_key"] = key
    return key


def _unrecorded(*conns: Any) -> None:
    """Connections of multiprocessing's own machinery (a Pool's pipes): not
    recorded, and given the unwrapped methods so they cost nothing."""
    for conn in conns:
        attrs = conn.__dict__
        attrs["_procsim_key"] = ""
        attrs["_send_bytes"] = types.MethodType(_plain_send_bytes, conn)
        attrs["_recv_bytes"] = types.MethodType(_plain_recv_bytes, conn)


def _queue_key(queue: Any) -> str:
    """A queue is known by its pipe's read end (either end may be closed here)."""
    key: str | None = queue.__dict__.get("_procsim_q")
    if key is None:
        key = _conn_key(queue._reader) or _conn_key(queue._writer)[:-1] + "r"
        if key == "r":
            key = ""
        queue.__dict__["_procsim_q"] = key
    return key


def _sem_key(lock: Any) -> str:
    semlock = lock._semlock
    return semlock.name or f"h{semlock.handle}"


def _pool_key(pool: Any) -> str:
    return pool.__dict__.get("_procsim_key", "") if pool is not None else ""


def _find_pool(match: Callable[[Any], bool]) -> Any:
    for ref in _pools:
        pool = ref()
        if pool is not None and match(pool):
            return pool
    return None


def name_object(obj: Any, name: str) -> None:
    """The program's own name for an object (used by the scenario executor)."""
    parts: Any = obj  # the private attributes below are not in the stubs
    # An object of a module the program never imported cannot be one of its classes.
    conn, queues, pool, sync = (
        sys.modules.get(f"multiprocessing.{name}", types)
        for name in ("connection", "queues", "pool", "synchronize")
    )
    if isinstance(obj, getattr(conn, "Connection", ())):
        key = _conn_key(obj)
    elif isinstance(obj, (getattr(queues, "Queue", ()), getattr(queues, "SimpleQueue", ()))):
        key = _queue_key(obj)
    elif isinstance(obj, getattr(pool, "Pool", ())):
        key = _pool_key(obj)
    elif isinstance(obj, getattr(sync, "Event", ())):
        key = _sem_key(parts._flag)
    elif isinstance(obj, getattr(sync, "Condition", ())):
        key = _sem_key(parts._lock)
    elif isinstance(obj, getattr(sync, "Barrier", ())):
        key = _sem_key(parts._cond._lock)
    elif isinstance(obj, getattr(sync, "SemLock", ())):
        key = _sem_key(obj)
    else:
        return
    if key:
        _emit("N", key, escape(name))


def mark(what: str) -> None:
    _emit("H", what)


# --- generic wrapping helpers ------------------------------------------------


def _patch(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    setattr(owner, name, make(getattr(owner, name)))


def _constructor(register: Callable[[Any], None], unrecord: Callable[[Any], None]) -> Any:
    """Wrap an __init__: the outermost constructor registers the object; objects
    built inside another (a Queue's locks) are parts of it, and those built
    inside a Pool are its machinery and are not recorded at all."""

    def make(orig: Any) -> Any:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            prev = _inside()
            _tls.inside = prev or "obj"
            try:
                orig(self, *args, **kwargs)
            finally:
                _tls.inside = prev
            if not prev:
                register(self)
            elif prev == "pool":
                unrecord(self)

        return __init__

    return make


# --- connections -------------------------------------------------------------


def _ready(conn: Any, write: bool) -> bool:
    """Whether a connection can be read (written) now without waiting. A poll
    object is kept per connection: Connection.poll() builds a selector per call
    and would cost the program more than the probe saves."""
    attrs = conn.__dict__
    name = "_procsim_pollw" if write else "_procsim_pollr"
    poller = attrs.get(name)
    try:
        if poller is None:
            poller = attrs[name] = _select.poll()
            poller.register(conn._handle, _select.POLLOUT if write else _select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError, TypeError):
        return True  # a closed connection: the call itself will say so


def _wrap_send_bytes(orig: Any) -> Any:
    def _send_bytes(self: Any, buf: Any) -> None:
        attrs = self.__dict__
        key = attrs.get("_procsim_key")
        if key is None:
            key = _conn_key(self)
        if not key:
            return orig(self, buf)  # type: ignore[no-any-return]
        size = len(buf)
        _line(f"M\tw\t{key}\t{_crc32(buf)}\t{size}")
        # A pipe end's send can block; a queue's writes happen in its feeder.
        if attrs.get("_procsim_role", "e") == "e" and (size > PIPE_BUF or not _ready(self, True)):
            recorded = begin("send", key)
            try:
                return orig(self, buf)  # type: ignore[no-any-return]
            finally:
                end(recorded)
        return orig(self, buf)  # type: ignore[no-any-return]

    return _send_bytes


def _wrap_recv_bytes(orig: Any) -> Any:
    def _recv_bytes(self: Any, maxsize: int | None = None) -> Any:
        attrs = self.__dict__
        key = attrs.get("_procsim_key")
        if key is None:
            key = _conn_key(self)
        if not key:
            return orig(self, maxsize)
        if attrs.get("_procsim_role", "e") == "e" and not _ready(self, False):
            recorded = begin("recv", key)
            try:
                buf = orig(self, maxsize)
            finally:
                end(recorded)
        else:
            buf = orig(self, maxsize)
        if buf is not None:
            with buf.getbuffer() as view:
                _line(f"M\tr\t{key}\t{_crc32(view)}\t{view.nbytes}")
        return buf

    return _recv_bytes


def _wrap_pipe(orig: Any) -> Any:
    def Pipe(duplex: bool = True) -> Any:
        a, b = orig(duplex)
        if _inside():
            return a, b  # part of a queue or a pool: its constructor decides
        names = _guess_names(2)
        if not names:
            base = _fallback("pipe")
            names = [f"{base}[0]", f"{base}[1]"]
        _emit(
            "O", "pipe", _conn_key(a), _conn_key(b), escape(names[0]), escape(names[1]), int(duplex)
        )
        return a, b

    return Pipe


# --- queues ------------------------------------------------------------------


def _queue_roles(queue: Any) -> None:
    queue._reader.__dict__["_procsim_role"] = "q"
    queue._writer.__dict__["_procsim_role"] = "q"


def _queues() -> Any:
    """multiprocessing.queues, loaded (and patched) once the program has a queue."""
    return sys.modules["multiprocessing.queues"]


def _register_queue(queue: Any) -> None:
    _queue_roles(queue)
    rlock = _sem_key(queue._rlock)
    wlock = _sem_key(queue._wlock) if queue._wlock is not None else ""
    joinable = int(isinstance(queue, _queues().JoinableQueue))
    maxsize = getattr(queue, "_maxsize", 0)
    _emit(
        "O", "queue", _queue_key(queue), _conn_key(queue._writer), escape(_name("queue", queue)),
        maxsize, joinable, rlock, wlock,
    )  # fmt: skip


def _unrecord_queue(queue: Any) -> None:
    _unrecorded(queue._reader, queue._writer)
    queue.__dict__["_procsim_q"] = ""
    if isinstance(queue, _queues().SimpleQueue):
        queue.__dict__["get"] = types.MethodType(_plain_simple_get, queue)


def _wrap_reset(orig: Any) -> Any:
    def _reset(self: Any, after_fork: bool = False) -> None:
        orig(self, after_fork)
        _queue_roles(self)
        # The feeder waits on this condition for data: its idle state.
        notempty = self._notempty
        if "wait" not in notempty.__dict__:
            notempty.wait = _feeder_wait(notempty.wait, self)

    return _reset


def _feeder_wait(orig: Any, queue: Any) -> Any:
    ref = weakref.ref(queue)

    def wait(timeout: float | None = None) -> Any:
        if threading.current_thread().__dict__.get("_procsim_role") != "feeder":
            return orig(timeout)
        q = ref()
        recorded = begin("feed", _queue_key(q) if q is not None else "")
        try:
            return orig(timeout)
        finally:
            end(recorded)

    return wait


def _wrap_put(orig: Any) -> Any:
    def put(self: Any, obj: Any, block: bool = True, timeout: float | None = None) -> None:
        if block:
            try:
                orig(self, obj, False)
            except _Full:
                recorded = begin("put", _queue_key(self), timeout is not None)
                try:
                    orig(self, obj, True, timeout)
                finally:
                    end(recorded)
        else:
            orig(self, obj, False)
        key = _queue_key(self)
        if key:
            _line(f"M\tput\t{key}\t0\t0")

    return put


def _wrap_get(orig: Any) -> Any:
    loads = ForkingPickler.loads

    def get(self: Any, block: bool = True, timeout: float | None = None) -> Any:
        if not block or self._closed:
            return orig(self, block, timeout)
        # Queue.get (CPython 3.11-3.13) when it need not wait. Holding the reader
        # lock, nobody else can take the data seen. `_ready`, not the queue's
        # `_poll`, which builds a selector per call: through it, a get that
        # read at once cost a fork child 24 µs, against 5 µs unprobed.
        rlock = self._rlock
        if rlock.acquire(False):
            try:
                ready = _ready(self._reader, False)
                if ready:
                    data = self._recv_bytes()
                    self._sem.release()
            finally:
                rlock.release()
            if ready:
                return loads(data)
        recorded = begin("get", _queue_key(self), timeout is not None)
        try:
            return orig(self, True, timeout)
        finally:
            end(recorded)

    return get


def _wrap_simple_get(orig: Any) -> Any:
    def get(self: Any) -> Any:
        key = _queue_key(self)
        if not key or _ready(self._reader, False):
            return orig(self)
        recorded = begin("get", key)
        try:
            return orig(self)
        finally:
            end(recorded)

    return get


def _wrap_simple_setstate(orig: Any) -> Any:
    def __setstate__(self: Any, state: Any) -> None:
        orig(self, state)
        _queue_roles(self)

    return __setstate__


def _wrap_task_done(orig: Any) -> Any:
    def task_done(self: Any) -> None:
        try:
            orig(self)
        except ValueError as exc:
            _emit("A", "task_done", _queue_key(self), escape(str(exc)))
            raise

    return task_done


def _wrap_queue_join(orig: Any) -> Any:
    def join(self: Any) -> None:
        if self._unfinished_tasks._semlock._is_zero():
            return orig(self)  # type: ignore[no-any-return]
        recorded = begin("qjoin", _queue_key(self))
        try:
            return orig(self)  # type: ignore[no-any-return]
        finally:
            end(recorded)

    return join


# --- locks, events, conditions, barriers -------------------------------------


def _wrap_make_methods(orig: Any) -> Any:
    def _make_methods(self: Any) -> None:
        orig(self)
        acquire = self._semlock.acquire
        key = _sem_key(self)

        def acquire_probe(block: bool = True, timeout: float | None = None) -> bool:
            if not block:
                return acquire(False)  # type: ignore[no-any-return]
            if acquire(False):
                return True
            recorded = begin("acquire", key, timeout is not None)
            try:
                return acquire(True, timeout)  # type: ignore[no-any-return]
            finally:
                end(recorded)

        self.acquire = acquire_probe

    return _make_methods


def _semlock_enter(self: Any) -> Any:
    return self.acquire()  # through the probe, not the C fast path


def _register_lock(lock: Any) -> None:
    _emit("O", "lock", _sem_key(lock), escape(_name("lock", lock)), type(lock).__name__)


def _register_event(event: Any) -> None:
    _emit("O", "event", _sem_key(event._flag), escape(_name("event", event)))


def _register_condition(cond: Any) -> None:
    _emit("O", "cond", _sem_key(cond._lock), escape(_name("cond", cond)))


def _register_barrier(barrier: Any) -> None:
    _emit("O", "barrier", _sem_key(barrier._cond._lock), escape(_name("barrier", barrier)))


def _nothing(_obj: Any) -> None:
    return None


def _wrap_wait(what: str, key_of: Callable[[Any], str], done: Callable[[Any], bool]) -> Any:
    def make(orig: Any) -> Any:
        def wait(self: Any, timeout: float | None = None) -> Any:
            if done(self):
                return orig(self, timeout)
            recorded = begin(what, key_of(self), timeout is not None)
            try:
                return orig(self, timeout)
            finally:
                end(recorded)

        return wait

    return make


# --- processes -------------------------------------------------------------------


def _wrap_start(orig: Any) -> Any:
    def start(self: Any) -> None:
        # When and by which thread the child is started: its first record (P)
        # says it. The parent records nothing here, as each page it writes
        # between two forks costs it a copy-on-write fault: a record cost
        # ~50 µs a start. It records the start (S) only for a child that may
        # have ended before its P (see _collected). The rest of P is formatted
        # here too: in the child, each object made costs a fault.
        attrs = self.__dict__
        attrs[_STARTED] = (
            f"\tchild\t{escape(self.name)}\t{1 if self.daemon else 0}"
            f"\t{_now()}\t{threading.get_native_id()}"
        )
        depth: int = getattr(_tls, "depth", 0)
        if depth or _inside() or getattr(_tls, "partial", ""):
            attrs[_RESET] = True
        orig(self)

    return start


def _wrap_bootstrap(orig: Any) -> Any:
    def _bootstrap(self: Any, parent_sentinel: Any = None) -> int:
        # A fork child's first Python code after the fork: each page it first
        # writes costs it a copy-on-write fault, so this calls as little as it can.
        attrs = self.__dict__
        if _RESET in attrs:  # its parent's thread was inside a probe as it forked
            _tls.depth, _tls.inside, _tls.partial = 0, "", ""  # _reset_thread_state()
        assert _rec is not None
        started = attrs.get(_STARTED)
        if started is None:  # not started through the probed start()
            started = f"\tchild\t{escape(self.name)}\t{1 if self.daemon else 0}\t\t"
        _rec.begin_task(f"P\t{os.getpid()}\t{os.getppid()}{started}")
        cause = ["exception"]
        run = self.run

        def run_probe() -> None:
            try:
                run()
            except SystemExit:
                cause[0] = "exit"
                raise
            except BaseException as exc:
                _emit("A", "exception", "", escape(f"{type(exc).__name__}: {exc} (exit code 1)"))
                raise
            cause[0] = "returned"

        self.run = run_probe
        code: int = orig(self, parent_sentinel)
        _rec.end_task(f"Z\t{code}\t{cause[0]}")
        if _cpu_check:  # tested here too: a fork child pays for every call
            _schedstat()
        return code

    return _bootstrap


def _wrap_poll(orig: Any) -> Any:
    """Popen.poll, where multiprocessing collects a child's exit status,
    whichever call gets there (join, is_alive, exitcode, active_children).
    CPython's own signature: a Pool's worker handler polls every worker each
    time it wakes, thousands of times in the reference Pool example, and
    passing on *args and **kwargs cost twice what the plain call does."""

    def poll(self: Any, flag: int = os.WNOHANG) -> Any:
        if self.returncode is not None:
            return self.returncode
        code = orig(self, flag)
        if code is not None:
            _collected(self, code)
        return code

    return poll


def _collected(popen: Any, code: int) -> None:
    """Record a child's exit code, and, unless it is 0, its start (S, at the
    time of its start() call): a child killed before its first record (P) has
    no other. One that ended with 0 ran its bootstrap, which writes P first."""
    if code != 0:
        # Still in _children: join, is_alive and active_children drop it after
        # the poll. A copy: another thread may start a process meanwhile.
        for proc in tuple(getattr(mp_process, "_children", ())):
            if proc._popen is popen and _STARTED in proc.__dict__:
                t, tid = proc.__dict__[_STARTED].rsplit("\t", 2)[1:]
                method = getattr(popen, "method", "")
                _emit_at(int(t), "S", popen.pid, escape(proc.name), int(proc.daemon), method, tid)
                break
    _emit("R", popen.pid, code)


def _wrap_join(orig: Any) -> Any:
    def join(self: Any, timeout: float | None = None) -> None:
        popen = self._popen
        if popen is None or popen.poll() is not None:
            orig(self, timeout)
            return
        recorded = begin("join", popen.pid, timeout is not None)
        try:
            orig(self, timeout)
        finally:
            end(recorded)

    return join


def _signal_context() -> str:
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_name
        if name == "_terminate_pool":
            return "pool"
        if name == "_exit_function":
            return "daemon"
        frame = frame.f_back  # type: ignore[assignment]
    return "terminate"


def _wrap_send_signal(orig: Any) -> Any:
    def _send_signal(self: Any, sig: int) -> None:
        if self.returncode is None:
            _emit("K", self.pid, int(sig), _signal_context())
        orig(self, sig)

    return _send_signal


# --- threads ----------------------------------------------------------------------


def _reset_thread_state() -> None:
    _tls.depth = 0
    _tls.inside = ""
    _tls.partial = ""


def _wrap_thread_start(orig: Any) -> Any:
    def start(self: Any) -> None:
        global _shutdown_probed
        t = _now()
        assert _rec is not None
        _rec.ensure_file()  # before the thread can record: one thread makes it
        if not _shutdown_probed:
            _patch(threading, "_shutdown", _wrap_shutdown)
            _shutdown_probed = True
        orig(self)
        _emit_at(t, "U", self.native_id, escape(self.name), int(self.daemon))

    return start


def _handler_role(thread: Any) -> tuple[str, str]:
    """(role, key) of a thread: a queue's feeder or a pool's helper thread."""
    target = thread.__dict__.get("_target")
    name = getattr(target, "__name__", "")
    args = thread.__dict__.get("_args", ())
    if name == "_feed" and args:
        writer = getattr(args[2], "__self__", None)
        key = _conn_key(writer)[:-1] + "r" if writer is not None else ""
        return "feeder", key
    if name in _HANDLERS and getattr(target, "__module__", "") == "multiprocessing.pool":
        if name == "_handle_results":
            pool = _find_pool(lambda p: p.__dict__.get("_cache") is args[2])
        else:
            position = 5 if name == "_handle_workers" else 3
            pool = _find_pool(lambda p: p.__dict__.get("_pool") is args[position])
        role = {"_handle_workers": "worker_handler", "_handle_tasks": "task_handler"}.get(
            name, "result_handler"
        )
        return role, _pool_key(pool)
    return "user", ""


def _wrap_bootstrap_inner(orig: Any) -> Any:
    def _bootstrap_inner(self: Any) -> None:
        _reset_thread_state()
        role, key = _handler_role(self)
        self.__dict__["_procsim_role"] = role
        _tls.pool = key
        _emit("T", escape(self.name), int(self.daemon), role, key)
        cause = ["returned"]
        run = self.run

        def run_probe() -> None:
            try:
                run()
            except SystemExit:
                cause[0] = "exit"
                raise
            except BaseException:
                cause[0] = "exception"
                raise

        self.run = run_probe
        try:
            orig(self)
        finally:
            _schedstat()
            _emit("t", cause[0])

    return _bootstrap_inner


def _wrap_thread_join(orig: Any) -> Any:
    def join(self: Any, timeout: float | None = None) -> None:
        if not self.is_alive() or self is threading.current_thread():
            return orig(self, timeout)  # type: ignore[no-any-return]
        recorded = begin("tjoin", self.native_id, timeout is not None)
        try:
            return orig(self, timeout)  # type: ignore[no-any-return]
        finally:
            end(recorded)

    return join


def _wrap_shutdown(orig: Any) -> Any:
    def _shutdown() -> None:
        # CPython waits for each non-daemon thread here; join them first so the
        # wait is recorded as `join <thread>`.
        if threading.active_count() > 1:  # cheaper than enumerate() for the usual lone thread
            main = threading.main_thread()
            for thread in threading.enumerate():
                if thread is not main and not thread.daemon and thread.is_alive():
                    thread.join()
        orig()

    return _shutdown


def _wrap_excepthook(orig: Any) -> Any:
    def excepthook(args: Any) -> None:
        if args.exc_type is not SystemExit:
            text = f"{args.exc_type.__name__}: {args.exc_value}"
            _emit("A", "exception", "", escape(text))
        orig(args)

    return excepthook


def _wrap_sys_excepthook(orig: Any) -> Any:
    def excepthook(exc_type: Any, exc: Any, tb: Any) -> None:
        _emit("A", "exception", "", escape(f"{exc_type.__name__}: {exc} (exit code 1)"))
        orig(exc_type, exc, tb)

    return excepthook


def _schedstat() -> None:
    """The CPU time the kernel counted for this thread, when a kernel trace
    will be checked against it. os.open/os.read: open() would build a text
    stream around three more system calls."""
    if not _cpu_check:
        return
    try:
        fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
        try:
            cpu, wait, _slices = os.read(fd, 100).split()
        finally:
            os.close(fd)
    except (OSError, ValueError):
        return
    _line(f"C\t{int(cpu)}\t{int(wait)}")


# --- sleep and stdout ---------------------------------------------------------


def _sleep(secs: float) -> None:
    if secs <= 0:
        return _orig_sleep(secs)
    recorded = begin("sleep")
    try:
        return _orig_sleep(secs)
    finally:
        end(recorded)


def _wrap_print(orig: Any) -> Any:
    """print() to stdout, recording each complete line (sys.stdout itself is
    left alone). Kept lean: the Pool's result handler prints in callbacks, and
    each extra microsecond there makes CPython's worker handler spin on the
    results still waiting in the pipe. (Keyword parameters instead of
    **kwargs would cost more: passing them on makes print parse them.)"""

    def print(*args: Any, **kwargs: Any) -> None:
        orig(*args, **kwargs)
        if len(args) == 1 and (not kwargs or kwargs.keys() == {"flush"}):
            kind = args[0].__class__
            if kind is int:  # the common print(i)
                _line(f"X\t{args[0]}")
                return
            if kind is str and "\n" not in args[0] and not getattr(_tls, "partial", ""):
                _line("X\t" + escape(args[0]))
                return
        _print_slow(args, kwargs)

    return print


def _print_slow(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    file = kwargs.get("file")
    if file is not None and file is not sys.stdout:
        return
    sep, end = kwargs.get("sep"), kwargs.get("end")
    text = (" " if sep is None else sep).join(map(str, args)) + ("\n" if end is None else end)
    lines = (getattr(_tls, "partial", "") + text).split("\n")
    _tls.partial = lines.pop()
    for line in lines:
        _line("X\t" + escape(line))


# --- pools ------------------------------------------------------------------------


def _wrap_pool_init(orig: Any) -> Any:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        prev = _inside()
        _tls.inside = "pool"
        try:
            orig(self, *args, **kwargs)
        finally:
            _tls.inside = prev
        # The change notifier's locks are taken once per result; only the pool's
        # own threads use them, and never for long: no probe on them.
        notifier = self.__dict__.get("_change_notifier")
        if notifier is not None and hasattr(notifier, "_rlock"):
            for lock in (notifier._rlock, notifier._wlock):
                lock.acquire = lock._semlock.acquire

    return __init__


def _wrap_setup_queues(orig: Any) -> Any:
    def _setup_queues(self: Any) -> None:
        key = f"{os.getpid()}-{_fallback('')}"
        self.__dict__["_procsim_key"] = key
        _pools.append(weakref.ref(self))
        _emit("O", "pool", key, escape(_name("pool", self)))
        orig(self)
        _pool_parts(self, key, ("inqueue", "outqueue"))

    return _setup_queues


def _pool_parts(pool: Any, key: str, parts: tuple[str, ...]) -> None:
    """Name a pool's own queues' locks after the pool (`p.inqueue`): the
    program's tasks can wait on them too."""
    for part in parts:
        queue = pool.__dict__.get(f"_{part}")
        if queue is not None and hasattr(queue, "_rlock"):
            _emit("O", "poolpart", key, part, _sem_key(queue._rlock), _sem_key(queue._wlock))


def _wrap_repopulate(orig: Any) -> Any:
    def _repopulate_pool_static(
        ctx: Any,
        Process: Any,
        processes: Any,
        pool: Any,
        *args: Any,
    ) -> None:
        before = {id(w) for w in pool}
        orig(ctx, Process, processes, pool, *args)
        owner = _find_pool(lambda p: p.__dict__.get("_pool") is pool)
        key = _pool_key(owner)
        if owner is None:
            return
        for w in pool:
            if id(w) not in before:
                index = owner.__dict__.get("_procsim_workers", 0) + 1
                owner.__dict__["_procsim_workers"] = index
                _emit("W", key, w.pid, index)

    return staticmethod(_repopulate_pool_static)


def _job_get(queue: Any) -> Callable[[], Any]:
    """A worker's `get` of its next task: SimpleQueue.get (CPython 3.11-3.13)
    with the lock taken in C, recording each job's start. The worker's waits
    for work are not recorded (one per task); between jobs it waits for one.
    The record costs less than the frames this saves."""
    line = _line
    rlock, recv_bytes = queue._rlock._semlock, queue._reader.recv_bytes
    loads = ForkingPickler.loads

    def get() -> Any:
        with rlock:
            data = recv_bytes()
        task = loads(data)
        if task is not None:
            line(f"J\tstart\t\t{task[0]}\t{task[1]}\t")
        return task

    return get


def _job_put(queue: Any) -> Callable[[Any], None]:
    """A worker's `put` of a result: SimpleQueue.put (CPython 3.11-3.13),
    recording the job's finish (or error) first. Its write lock is probed as
    `_wrap_make_methods` probes locks: a wait is recorded only when it is taken."""
    line = _line
    wlock, send_bytes = queue._wlock._semlock, queue._writer.send_bytes
    dumps, key = ForkingPickler.dumps, _sem_key(queue._wlock)

    def put(item: Any) -> None:
        job, index, (ok, _value) = item
        line(f"J\t{'finish' if ok else 'error'}\t\t{job}\t{index}\t")
        data = dumps(item)
        if not wlock.acquire(False):
            recorded = begin("acquire", key)
            try:
                wlock.acquire()
            finally:
                end(recorded)
        try:
            send_bytes(data)
        finally:
            wlock.release()

    return put


def _make_worker(orig: Any) -> Any:
    def worker(inqueue: Any, outqueue: Any, *args: Any, **kwargs: Any) -> None:
        # A ThreadPool's workers (threads, with queue.SimpleQueue) are not traced.
        queues = sys.modules.get("multiprocessing.queues")  # a ThreadPool may not have it
        if type(inqueue) is type(outqueue) is getattr(queues, "SimpleQueue", None):
            for queue in (inqueue, outqueue):
                _unrecord_queue(queue)
            # Instance attributes: CPython's worker looks up `inqueue.get` and `outqueue.put`.
            inqueue.__dict__["get"] = _job_get(inqueue)
            outqueue.__dict__["put"] = _job_put(outqueue)
        orig(inqueue, outqueue, *args, **kwargs)

    # Pickled by reference (spawn): it must be found as multiprocessing.pool.worker.
    worker.__module__ = orig.__module__
    worker.__qualname__ = orig.__qualname__
    worker.__name__ = orig.__name__
    return worker


def _wrap_apply_async(orig: Any) -> Any:
    """`apply_async` with its own signature: called once per task, it is kept
    to one call and one record (see `_wrap_print`)."""

    def apply_async(
        self: Any,
        func: Any,
        args: Any = (),
        kwds: Any = {},  # noqa: B006 - CPython's own default, passed through unchanged
        callback: Any = None,
        error_callback: Any = None,
    ) -> Any:
        result = orig(self, func, args, kwds, callback, error_callback)
        key = self.__dict__.get("_procsim_key", "")
        result.__dict__["_procsim_pool"] = key
        _line(f"J\tsubmit\t{key}\t{result._job}\t\tapply")
        return result

    return apply_async


def _wrap_submit(kind: str) -> Any:
    def make(orig: Any) -> Any:
        def submit(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = orig(self, *args, **kwargs)
            target = result
            if not hasattr(result, "_job"):
                # imap with chunksize > 1 returns a generator over the IMapIterator.
                frame = getattr(result, "gi_frame", None)
                target = frame.f_locals.get(".0") if frame is not None else None
                if not hasattr(target, "_job"):
                    return result
            key = self.__dict__.get("_procsim_key", "")
            target.__dict__["_procsim_pool"] = key
            _line(f"J\tsubmit\t{key}\t{target._job}\t\t{kind}")
            return result

        return submit

    return make


def _wrap_apply_set(orig: Any) -> Any:
    """A result reaches the parent's result handler, which runs the callback
    (or error callback) inside `_set`; recorded as `_set` returns, when the
    callback has finished. Kept to a few lookups: see `_wrap_print`."""

    def _set(self: Any, i: int, obj: Any) -> None:
        orig(self, i, obj)
        if (self._callback if obj[0] else self._error_callback) is not None:
            op = "callback" if obj[0] else "error_callback"
            _line(f"J\t{op}\t{self.__dict__.get('_procsim_pool', '')}\t{self._job}\t\t")

    return _set


def _wrap_map_set(orig: Any) -> Any:
    """As `_wrap_apply_set`, for a map's result: the callback runs once, with
    the last chunk."""

    def _set(self: Any, i: int, obj: Any) -> None:
        orig(self, i, obj)
        if self._number_left == 0:
            fn = self._callback if self._success else self._error_callback
            if fn is not None:
                op = "callback" if self._success else "error_callback"
                _line(f"J\t{op}\t{self.__dict__.get('_procsim_pool', '')}\t{self._job}\t\t")

    return _set


def _wrap_result_get(orig: Any) -> Any:
    def get(self: Any, timeout: float | None = None) -> Any:
        try:
            return orig(self, timeout)
        finally:
            if self.ready():
                _emit("J", "result", self.__dict__.get("_procsim_pool", ""), self._job, "", "")

    return get


def _wrap_imap_next(orig: Any) -> Any:
    def next(self: Any, timeout: float | None = None) -> Any:
        key = self.__dict__.get("_procsim_pool", "")
        waits = not self._items and self._index != self._length
        recorded = begin("result", key, timeout is not None) if waits else False
        try:
            return orig(self, timeout)
        except StopIteration:
            _emit("J", "result", key, self._job, "", "")
            raise
        finally:
            if waits:
                end(recorded)

    return next


def _wrap_pool_join(orig: Any) -> Any:
    def join(self: Any) -> None:
        recorded = begin("pjoin", _pool_key(self))
        try:
            orig(self)
        finally:
            end(recorded)

    return join


# --- installation -------------------------------------------------------------------


def _patch_connection(mp_connection: Any) -> None:
    global _plain_send_bytes, _plain_recv_bytes, _crc32, _select
    import select
    import zlib

    _crc32, _select = zlib.crc32, select
    conn = mp_connection.Connection
    _plain_send_bytes, _plain_recv_bytes = conn._send_bytes, conn._recv_bytes
    _patch(conn, "_send_bytes", _wrap_send_bytes)
    _patch(conn, "_recv_bytes", _wrap_recv_bytes)
    _patch(mp_connection, "Pipe", _wrap_pipe)


def _patch_queues(mp_queues: Any) -> None:
    global _plain_simple_get, _Full
    queue, joinable, simple = mp_queues.Queue, mp_queues.JoinableQueue, mp_queues.SimpleQueue
    _plain_simple_get, _Full = simple.get, mp_queues.Full
    _patch(queue, "__init__", _constructor(_register_queue, _unrecord_queue))
    _patch(joinable, "__init__", _constructor(_register_queue, _unrecord_queue))
    _patch(simple, "__init__", _constructor(_register_queue, _unrecord_queue))
    _patch(queue, "_reset", _wrap_reset)
    _patch(queue, "put", _wrap_put)
    _patch(joinable, "put", _wrap_put)
    _patch(queue, "get", _wrap_get)
    _patch(simple, "get", _wrap_simple_get)
    _patch(simple, "__setstate__", _wrap_simple_setstate)
    _patch(joinable, "task_done", _wrap_task_done)
    _patch(joinable, "join", _wrap_queue_join)


def _patch_synchronize(mp_sync: Any) -> None:
    _patch(mp_sync.SemLock, "_make_methods", _wrap_make_methods)
    mp_sync.SemLock.__enter__ = _semlock_enter
    for cls in (mp_sync.Lock, mp_sync.RLock, mp_sync.Semaphore, mp_sync.BoundedSemaphore):
        _patch(cls, "__init__", _constructor(_register_lock, _nothing))
    _patch(mp_sync.Event, "__init__", _constructor(_register_event, _nothing))
    _patch(mp_sync.Condition, "__init__", _constructor(_register_condition, _nothing))
    _patch(mp_sync.Barrier, "__init__", _constructor(_register_barrier, _nothing))
    _patch(
        mp_sync.Event,
        "wait",
        _wrap_wait("ewait", lambda e: _sem_key(e._flag), lambda e: e.is_set()),
    )
    _patch(mp_sync.Condition, "wait", _wrap_wait("cwait", lambda c: _sem_key(c._lock), _no))
    mp_sync.Barrier.wait = _wrap_wait("bwait", lambda b: _sem_key(b._cond._lock), _no)(
        threading.Barrier.wait
    )


def _patch_popen_fork(mp_popen_fork: Any) -> None:
    """The spawn start method's Popen inherits these."""
    _patch(mp_popen_fork.Popen, "_send_signal", _wrap_send_signal)
    _patch(mp_popen_fork.Popen, "poll", _wrap_poll)


def _patch_popen_forkserver(mp_popen_forkserver: Any) -> None:
    _patch(mp_popen_forkserver.Popen, "poll", _wrap_poll)


def _patch_pool(mp_pool: Any) -> None:
    pool = mp_pool.Pool
    _patch(pool, "__init__", _wrap_pool_init)
    _patch(pool, "_setup_queues", _wrap_setup_queues)
    wrapped = _wrap_repopulate(pool.__dict__["_repopulate_pool_static"].__func__)
    setattr(pool, "_repopulate_pool_static", wrapped)  # noqa: B010 - a staticmethod
    _patch(mp_pool, "worker", _make_worker)
    _patch(pool, "apply_async", _wrap_apply_async)
    _patch(pool, "_map_async", _wrap_submit("map"))
    _patch(pool, "imap", _wrap_submit("map"))
    _patch(pool, "imap_unordered", _wrap_submit("map"))
    _patch(pool, "join", _wrap_pool_join)
    _patch(mp_pool.ApplyResult, "_set", _wrap_apply_set)
    _patch(mp_pool.MapResult, "_set", _wrap_map_set)
    _patch(mp_pool.ApplyResult, "get", _wrap_result_get)
    _patch(
        mp_pool.ApplyResult,
        "wait",
        _wrap_wait("result", lambda r: r.__dict__.get("_procsim_pool", ""), lambda r: r.ready()),
    )
    _patch(mp_pool.IMapIterator, "next", _wrap_imap_next)
    mp_pool.IMapIterator.__next__ = mp_pool.IMapIterator.next


class _PatchOnImport:
    """First on `sys.meta_path`: patches a module of multiprocessing right
    after it is first loaded, so a process that never imports it (a spawn
    child running a plain Process) neither imports nor patches it."""

    def __init__(self) -> None:
        self.pending: dict[str, Callable[[Any], None]] = {}

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        patch = self.pending.get(name)
        if patch is None:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find(name, path, target) if finder is not self and find is not None else None
            if spec is not None:
                break
        else:
            return None
        # A file loader is one object per module; any other kind is left alone
        # (and the module unprobed) rather than changed for every module it loads.
        loader = spec.loader
        if not isinstance(loader, SourceFileLoader | SourcelessFileLoader):
            return None
        del self.pending[name]
        exec_module = loader.exec_module

        def exec_and_patch(module: Any) -> None:
            exec_module(module)
            patch(module)

        loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


def _when_imported(name: str, patch: Callable[[Any], None]) -> None:
    module = sys.modules.get(name)
    if module is not None:
        patch(module)
        return
    finder = next((f for f in sys.meta_path if isinstance(f, _PatchOnImport)), None)
    if finder is None:
        finder = _PatchOnImport()
        sys.meta_path.insert(0, finder)
    finder.pending[name] = patch


def install(directory: str, root: bool) -> Recorder:
    """Patch this interpreter. `root`: this is the traced program's main process."""
    global _rec, _emit, _emit_at, _line, _cpu_check
    _cpu_check = os.environ.get(SCHEDSTAT_ENV) == "1"
    rec = Recorder(directory)
    _rec, _emit, _emit_at, _line = rec, rec.emit, rec.emit_at, rec.line

    _when_imported("multiprocessing.connection", _patch_connection)
    _when_imported("multiprocessing.queues", _patch_queues)
    _when_imported("multiprocessing.synchronize", _patch_synchronize)
    _when_imported("multiprocessing.popen_fork", _patch_popen_fork)
    _when_imported("multiprocessing.popen_forkserver", _patch_popen_forkserver)
    _when_imported("multiprocessing.pool", _patch_pool)

    base = mp_process.BaseProcess
    _patch(base, "start", _wrap_start)
    _patch(base, "_bootstrap", _wrap_bootstrap)
    _patch(base, "join", _wrap_join)

    _patch(threading.Thread, "start", _wrap_thread_start)
    _patch(threading.Thread, "_bootstrap_inner", _wrap_bootstrap_inner)
    _patch(threading.Thread, "join", _wrap_thread_join)
    _patch(threading, "excepthook", _wrap_excepthook)
    setattr(time, "sleep", _sleep)  # noqa: B010 - a typed assignment would not check

    _patch(builtins, "print", _wrap_print)
    if root:
        rec.activate()
        _emit("P", os.getpid(), os.getppid(), "root", "main", 0)
        _emit("H", "python", sys.version.split()[0])  # as platform.python_version()
        _patch(sys, "excepthook", _wrap_sys_excepthook)
        if _cpu_check:  # registered after multiprocessing's exit function: runs before it
            atexit.register(_schedstat)
    return rec


def _no(_obj: Any) -> bool:
    return False
