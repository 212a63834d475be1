"""What the stage shows at one cursor position: which task is in which place,
in what order, what is moving, and what messages are on their way.

Pure: a `View` depends only on the trace index, the cursor and the `Motion`
settings, so the same inputs always give the same picture.

Motion is anticipatory: a token glides during the last part of its stay in a
place and *arrives* at the moment of the event that moves it (at the place it
holds once every event of that instant is applied). At an event's time the
picture therefore shows the state after that event, which is what stepping
event by event needs. A message flies into its mailbox as it is put and out
of it to land in the receiver as it is taken.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Literal

from sim.trace import Cause, TaskState
from viz.index import Journey, TaskInfo, TraceIndex, Transition

PlaceKind = Literal["new", "ready", "cpu", "blocked", "terminated"]

# A glide takes at most this fraction of the token's stay in its place, so a
# token is seen at rest for at least the rest of it.
GLIDE_FRACTION = 0.5
# A glide shorter than this fraction of the full glide time would be a blur:
# a token that changes place that fast jumps instead, so it is always seen
# where it really is rather than forever in mid-air.
MIN_GLIDE_FRACTION = 0.3
# Wall-clock seconds a glide and a message flight last at the current speed.
GLIDE_WALL_S = 0.25
FLIGHT_WALL_S = 0.4
# Beyond this many messages leaving (or arriving) within one flight time, only
# the latest are drawn: a burst of 10,000 submissions is a stream, not 10,000 dots.
MAX_FLIGHTS = 48
RECENT_EVENTS = 3


@dataclass(frozen=True, slots=True)
class Place:
    """A place on the stage. `key` is the CPU number for `cpu` (None when the
    recorder did not say which CPU) and the reason for `blocked`."""

    kind: PlaceKind
    key: str | int | None = None


NEW = Place("new")
READY = Place("ready")
TERMINATED = Place("terminated")


def place_of(tr: Transition) -> Place:
    if tr.state == "running":
        return Place("cpu", tr.cpu if tr.cpu is not None and tr.cpu >= 0 else None)
    if tr.state == "blocked":
        return Place("blocked", tr.reason or "?")
    if tr.state == "ready":
        return READY
    if tr.state == "terminated":
        return TERMINATED
    return NEW


@dataclass(frozen=True, slots=True)
class Motion:
    """How long glides and flights last, in trace nanoseconds."""

    glide_ns: int
    flight_ns: int

    @staticmethod
    def for_speed(speed: float) -> Motion:
        """`speed` is trace seconds shown per wall-clock second."""
        return Motion(round(GLIDE_WALL_S * speed * 1e9), round(FLIGHT_WALL_S * speed * 1e9))


@dataclass(frozen=True, slots=True)
class TokenView:
    """A task on the stage. `pos` is its rank in its place (0 = the head),
    fractional while tokens ahead of it are leaving. While gliding, `dest` is
    the place it is heading for, `dest_pos` its rank there and `progress` how
    far it has come (0 at rest)."""

    info: TaskInfo
    state: TaskState
    place: Place
    pos: float
    cpu: int | None = None
    reason: str | None = None
    exit_code: int | None = None
    cause: Cause | None = None
    dest: Place | None = None
    dest_pos: float = 0.0
    progress: float = 0.0


@dataclass(frozen=True, slots=True)
class Lane:
    """The tasks blocked for one reason, in the order they blocked."""

    reason: str
    members: tuple[str, ...]


FlightLeg = Literal["to_mailbox", "from_mailbox"]


@dataclass(frozen=True, slots=True)
class Flight:
    """A journey on the wing: from its sender into its mailbox, or out of the
    mailbox to its receiver."""

    journey: Journey
    leg: FlightLeg
    progress: float


@dataclass(frozen=True, slots=True)
class View:
    t: int
    k: int
    tokens: dict[str, TokenView]
    new: tuple[str, ...]
    ready: tuple[str, ...]
    cpus: tuple[tuple[str, ...], ...]  # per CPU number: normally one task or none
    unknown_cpu: tuple[str, ...]  # running on a CPU the recorder did not name
    lanes: tuple[Lane, ...]
    terminated: tuple[str, ...]
    flights: tuple[Flight, ...]
    mailboxes: tuple[tuple[str, int], ...]  # every mailbox of the trace and its count now
    recent: tuple[int, ...]  # indices of the latest events, oldest first

    def members(self, place: Place) -> tuple[str, ...]:
        if place.kind == "ready":
            return self.ready
        if place.kind == "new":
            return self.new
        if place.kind == "terminated":
            return self.terminated
        if place.kind == "cpu":
            if isinstance(place.key, int) and 0 <= place.key < len(self.cpus):
                return self.cpus[place.key]
            return self.unknown_cpu
        for lane in self.lanes:
            if lane.reason == place.key:
                return lane.members
        return ()


@dataclass(slots=True)
class _Entry:
    """A task while the view is being assembled."""

    tr: Transition
    progress: float
    dest: Place | None
    pos: float = 0.0
    dest_pos: float = 0.0


def view_at(index: TraceIndex, t: int, k: int, motion: Motion) -> View:
    """The stage after the first k events of the trace, at time t: at or after
    the time of event k-1 and at most that of event k (several events can
    share an instant, and stepping applies them one at a time)."""
    entries: dict[str, _Entry] = {}
    groups: dict[Place, list[tuple[int, str]]] = {}
    incoming: dict[Place, list[tuple[int, str]]] = {}
    for track in index.order:
        j = track.current(k)
        if j < 0:
            continue
        tr = track.transitions[j]
        nxt = track.transitions[j + 1] if j + 1 < len(track.transitions) else None
        place = place_of(tr)
        progress, dest = 0.0, None
        if nxt is not None and nxt.t > t and motion.glide_ns > 0:
            glide = min(motion.glide_ns, (nxt.t - tr.t) * GLIDE_FRACTION)
            # Several transitions at one instant (ready and running at once): aim
            # straight for the last of them.
            last = j + 1
            trs = track.transitions
            while last + 1 < len(trs) and trs[last + 1].t == nxt.t:
                last += 1
            to = place_of(trs[last])
            smooth = glide >= motion.glide_ns * MIN_GLIDE_FRACTION
            if smooth and nxt.t - t < glide and to != place:
                progress, dest = 1.0 - (nxt.t - t) / glide, to
                incoming.setdefault(to, []).append((trs[last].k, track.info.name))
        entries[track.info.name] = _Entry(tr, progress, dest)
        groups.setdefault(place, []).append((tr.k, track.info.name))

    # Ranks: a token moves up as those ahead of it leave, and an arriving token
    # aims at the tail as it will be when it lands.
    departing: dict[Place, float] = {}
    ordered: dict[Place, tuple[str, ...]] = {}
    for place, members in groups.items():
        members.sort()
        names = tuple(name for _, name in members)
        ordered[place] = names
        gone = 0.0
        for i, name in enumerate(names):
            entry = entries[name]
            entry.pos = i - gone
            gone += entry.progress
        departing[place] = gone
    for place, arrivals in incoming.items():
        arrivals.sort()
        base = len(ordered.get(place, ())) - departing.get(place, 0.0)
        for rank, (_, name) in enumerate(arrivals):
            entries[name].dest_pos = base + rank

    tokens = {name: _token(index, name, e) for name, e in entries.items()}
    cpus: list[tuple[str, ...]] = [() for _ in range(index.cpu_count)]
    unknown_cpu: tuple[str, ...] = ()
    reasons: set[str] = set()
    for place, names in ordered.items():
        if place.kind == "cpu":
            if isinstance(place.key, int):
                cpus[place.key] = names
            else:
                unknown_cpu = names
        elif place.kind == "blocked":
            reasons.add(str(place.key))
    # A lane appears as soon as a token heads for it, so the token has a target.
    reasons.update(str(p.key) for p in incoming if p.kind == "blocked")
    lanes = tuple(
        Lane(r, ordered.get(Place("blocked", r), ()))
        for r in sorted(reasons, key=lambda r: index.reason_order.get(r, len(index.reason_order)))
    )
    return View(
        t=t,
        k=k,
        tokens=tokens,
        new=ordered.get(NEW, ()),
        ready=ordered.get(READY, ()),
        cpus=tuple(cpus),
        unknown_cpu=unknown_cpu,
        lanes=lanes,
        terminated=ordered.get(TERMINATED, ()),
        flights=_flights(index, t, k, motion.flight_ns),
        mailboxes=tuple((mb.name, mb.count(k)) for mb in index.mailboxes.values()),
        recent=tuple(range(max(0, k - RECENT_EVENTS), k)),
    )


def _token(index: TraceIndex, name: str, e: _Entry) -> TokenView:
    tr = e.tr
    return TokenView(
        info=index.tracks[name].info,
        state=tr.state,
        place=place_of(tr),
        pos=e.pos,
        cpu=tr.cpu,
        reason=tr.reason,
        exit_code=tr.exit_code,
        cause=tr.cause,
        dest=e.dest,
        dest_pos=e.dest_pos,
        progress=e.progress,
    )


def _flights(index: TraceIndex, t: int, k: int, flight_ns: int) -> tuple[Flight, ...]:
    """Journeys on the wing: into the mailbox just after leaving, out of it
    just before arriving. Each leg takes the flight time, or half the time
    between leaving and arriving when that is shorter, so the two legs never
    overlap and the last one lands exactly when the receiver takes it."""
    if flight_ns <= 0:
        return ()
    out: list[Flight] = []
    lo = bisect_left(index.src_times, t - flight_ns)
    hi = bisect_right(index.src_times, t)
    for j in index.by_src[max(lo, hi - MAX_FLIGHTS) : hi]:
        if j.src_k >= k:
            continue
        leg = _leg(j, flight_ns, index.end_t)
        if leg > 0 and t - j.src_t < leg:
            out.append(Flight(j, "to_mailbox", (t - j.src_t) / leg))
    lo = bisect_left(index.dst_times, t)
    hi = bisect_right(index.dst_times, t + flight_ns)
    for j in index.by_dst[lo : min(hi, lo + MAX_FLIGHTS)]:
        assert j.dst_t is not None and j.dst_k is not None
        if j.dst_k < k:
            continue
        leg = _leg(j, flight_ns, index.end_t)
        if leg > 0 and j.dst_t - t < leg:
            out.append(Flight(j, "from_mailbox", 1.0 - (j.dst_t - t) / leg))
    return tuple(out)


def _leg(j: Journey, flight_ns: int, end_t: int) -> float:
    if j.dst_t is None:
        return min(flight_ns, end_t - j.src_t)
    return min(flight_ns, (j.dst_t - j.src_t) / 2)
