"""A trace written with TraceWriter and read back is identical, for random valid
headers and event sequences of every kind (unicode text, every optional field)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from sim.trace import (
    STATES,
    BlockedTask,
    Cause,
    End,
    EndStatus,
    Event,
    Header,
    JobEvent,
    JobOp,
    MessageEvent,
    MessageOp,
    OutputEvent,
    StateChanged,
    TaskCreated,
    TaskKind,
    Trace,
    TraceWriter,
    WarningEvent,
    read_trace,
)

names = st.text(min_size=1, max_size=12)
opt_int = st.none() | st.integers(-(2**31), 2**31)
small = st.integers(0, 10**6)

# JSON values that come back equal: lists not tuples, finite floats.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=4)

headers = st.builds(
    Header,
    scenario=st.text(max_size=30),
    source=st.sampled_from(["sim", "real"]),
    machine=json_objects,
    seed=st.integers(0, 2**63),
    tool_version=st.text(max_size=10),
    python_version=st.text(max_size=10),
    clock_origin=st.text(max_size=20),
    notes=json_objects,
)


def event_at(t: int) -> st.SearchStrategy[Event]:
    """Any event kind at time t, with optional fields set or left at defaults."""
    return st.one_of(
        st.builds(
            TaskCreated,
            t=st.just(t),
            task=names,
            kind=st.sampled_from(get_args(TaskKind)),
            process=names,
            parent=st.none() | names,
            daemon=st.booleans(),
            pid=opt_int,
            tid=opt_int,
        ),
        st.builds(
            StateChanged,
            t=st.just(t),
            task=names,
            state=st.sampled_from(STATES),
            cpu=st.none() | st.integers(0, 255),
            reason=st.none() | st.text(max_size=20),
            exit_code=opt_int,
            cause=st.none() | st.sampled_from(get_args(Cause)),
            uncertain=st.booleans(),
        ),
        st.builds(
            MessageEvent,
            t=st.just(t),
            task=names,
            op=st.sampled_from(get_args(MessageOp)),
            obj=names,
            msg=small,
            size=small,
        ),
        st.builds(
            JobEvent,
            t=st.just(t),
            task=names,
            op=st.sampled_from(get_args(JobOp)),
            pool=names,
            job=small,
            chunk=st.none() | small,
        ),
        st.builds(OutputEvent, t=st.just(t), task=names, text=st.text(max_size=40)),
        st.builds(WarningEvent, t=st.just(t), task=names, kind=names, text=st.text(max_size=40)),
    )


@st.composite
def traces(draw: Any) -> Trace:
    deltas = draw(st.lists(st.integers(0, 10**9), max_size=25))
    events: list[Event] = []
    t = 0
    for delta in deltas:
        t += delta
        events.append(draw(event_at(t)))
    end = End(
        t=t + draw(st.integers(0, 10**6)),
        status=draw(st.sampled_from(get_args(EndStatus))),
        blocked=tuple(
            draw(
                st.lists(
                    st.builds(BlockedTask, task=names, reason=st.text(max_size=15)), max_size=3
                )
            )
        ),
        cycle=tuple(draw(st.lists(names, max_size=3))),
        detail=draw(st.text(max_size=30)),
    )
    return Trace(draw(headers), tuple(events), end)


@settings(max_examples=150, deadline=None)
@given(trace=traces())
def test_write_then_read_is_identical(trace: Trace) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.jsonl"
        with TraceWriter(path, trace.header) as writer:
            for event in trace.events:
                writer.emit(event)
            writer.close(trace.end)
        assert read_trace(path) == trace
        # Nothing but the trace is left in the directory (the temp file was renamed).
        assert [p.name for p in Path(d).iterdir()] == ["t.jsonl"]
