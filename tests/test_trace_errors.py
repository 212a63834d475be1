"""The reader rejects bad files with a TraceError naming the right line; the
writer leaves either a complete trace or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trace_helpers import fcfs_trace, header, write

from sim.trace import End, StateChanged, TraceError, TraceReader, TraceWriter, read_trace


def lines_of(tmp_path: Path) -> list[str]:
    return write(tmp_path, fcfs_trace()).read_text(encoding="utf-8").splitlines()


def error_for(path: Path) -> TraceError:
    with pytest.raises(TraceError) as info:
        read_trace(path)
    assert info.value.path == str(path)
    return info.value


def test_missing_end_record_is_truncated_at_last_line(tmp_path: Path) -> None:
    lines = lines_of(tmp_path)
    bad = tmp_path / "cut.jsonl"
    bad.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    err = error_for(bad)
    assert err.line == len(lines) - 1
    assert "truncated" in err.message


def test_last_line_cut_mid_json(tmp_path: Path) -> None:
    lines = lines_of(tmp_path)
    bad = tmp_path / "cut.jsonl"
    bad.write_text("\n".join(lines[:5]) + "\n" + lines[5][:7], encoding="utf-8")
    err = error_for(bad)
    assert err.line == 6
    assert "not valid JSON" in err.message


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("[1, 2, 3]\n", "JSON object"),
        ("hello, this is a text file\nwith two lines\n", "not valid JSON"),
        ("", "not a procsim trace"),
        ('{"format": "something-else", "version": 1}\n', "not a procsim trace"),
    ],
    ids=["json-list", "text", "empty", "other-format"],
)
def test_foreign_files_fail_on_line_1(tmp_path: Path, content: str, expected: str) -> None:
    bad = tmp_path / "foreign.jsonl"
    bad.write_text(content, encoding="utf-8")
    err = error_for(bad)
    assert err.line == 1
    assert expected in err.message


def test_binary_file_is_not_a_trace(tmp_path: Path) -> None:
    bad = tmp_path / "blob.jsonl"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    assert error_for(bad).line == 1


def test_missing_file(tmp_path: Path) -> None:
    err = error_for(tmp_path / "nope.jsonl")
    assert "cannot open" in err.message


def test_time_going_backwards(tmp_path: Path) -> None:
    lines = lines_of(tmp_path)
    # Line 12 is P1's termination at 24 ms; put a 1 ms event right after it.
    assert json.loads(lines[11])["t"] == 24_000_000
    back = json.dumps({"ev": "state", "t": 1_000_000, "task": "P2", "state": "ready"})
    bad = tmp_path / "back.jsonl"
    bad.write_text("\n".join([*lines[:12], back, *lines[12:]]) + "\n", encoding="utf-8")
    err = error_for(bad)
    assert err.line == 13
    assert "backwards" in err.message


def test_unknown_event_kind(tmp_path: Path) -> None:
    lines = lines_of(tmp_path)
    bad = tmp_path / "kind.jsonl"
    odd = json.dumps({"ev": "teleport", "t": 0, "task": "P1"})
    bad.write_text("\n".join([*lines[:3], odd, *lines[3:]]) + "\n", encoding="utf-8")
    err = error_for(bad)
    assert err.line == 4
    assert "teleport" in err.message


def test_data_after_end_record(tmp_path: Path) -> None:
    lines = lines_of(tmp_path)
    bad = tmp_path / "tail.jsonl"
    bad.write_text("\n".join([*lines, lines[3]]) + "\n", encoding="utf-8")
    err = error_for(bad)
    assert err.line == len(lines) + 1


def test_reader_is_lazy_about_errors(tmp_path: Path) -> None:
    """The header is available at once; a problem further down surfaces only when
    the events are read (so streaming consumers see the good prefix)."""
    lines = lines_of(tmp_path)
    bad = tmp_path / "cut.jsonl"
    bad.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    reader = TraceReader(bad)
    assert reader.header.scenario == "fcfs-24-3-3"
    seen = []
    with pytest.raises(TraceError):
        for event in reader.events():
            seen.append(event)
    assert len(seen) == len(lines) - 2


def test_exception_inside_writer_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"

    class Boom(Exception):
        pass

    with pytest.raises(Boom), TraceWriter(target, header()) as writer:
        writer.emit(StateChanged(0, "main", "ready"))
        raise Boom
    assert list(tmp_path.iterdir()) == []


def test_failed_rewrite_keeps_the_old_trace(tmp_path: Path) -> None:
    target = write(tmp_path, fcfs_trace(), "out.jsonl")
    before = target.read_bytes()
    with pytest.raises(RuntimeError), TraceWriter(target, header()) as writer:
        writer.emit(StateChanged(0, "main", "ready"))
        raise RuntimeError("simulator failed")
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_abort_and_close(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    writer = TraceWriter(target, header())
    assert not target.exists()  # nothing under the name until close
    writer.abort()
    assert list(tmp_path.iterdir()) == []
    with TraceWriter(target, header()) as writer:
        writer.close(End(0, "complete"))
    assert read_trace(target).events == ()
