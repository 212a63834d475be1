"""Reading the probes' record files (see `sim.real.runtime.recorder` for the format).

`read_records` reads a whole run directory at the end of a run; `RecordTail`
reads the files while the run goes on, returning only complete new lines, for
the deadlock watch. A file cut off mid-record (a process killed while writing)
loses only that last partial line. The run's shared file (each child's first
few records, each line led by the writer's pid) is read with the per-process
files; its records belong to the process that wrote them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sim.real.runtime.recorder import SHARED_NAME, SUFFIX, unescape


@dataclass(frozen=True, slots=True)
class Record:
    t: int
    pid: int  # the process whose file holds the record
    tid: int
    kind: str
    fields: tuple[str, ...]

    def text(self, index: int) -> str:
        """An escaped text field, unescaped."""
        return unescape(self.fields[index]) if index < len(self.fields) else ""

    def int(self, index: int) -> int:
        return int(self.fields[index])


def _pid_of(path: Path) -> int:
    return int(path.name.split("-", 1)[0])


def _parse(pid: int | None, data: bytes) -> list[Record]:
    """The records of one process's file, or (`pid` None) of the shared file."""
    out: list[Record] = []
    lead = 1 if pid is None else 0
    for line in data.decode("utf-8", "replace").split("\n"):
        parts = line.split("\t")
        if len(parts) < 3 + lead:
            continue
        try:
            writer = int(parts[0]) if pid is None else pid
            t, tid = int(parts[lead]), int(parts[lead + 1])
        except ValueError:
            continue  # a torn record
        out.append(Record(t, writer, tid, parts[lead + 2], tuple(parts[lead + 3 :])))
    return out


def _complete(data: bytes) -> bytes:
    """The complete lines of a record file (up to the last newline before the
    zero-filled tail)."""
    nul = data.find(b"\0")
    if nul >= 0:
        data = data[:nul]
    cut = data.rfind(b"\n")
    return data[: cut + 1] if cut >= 0 else b""


def record_files(directory: Path) -> list[Path]:
    """The per-process files and, last, the shared file if there is one."""
    shared = directory / SHARED_NAME
    return sorted(directory.glob(f"*{SUFFIX}")) + ([shared] if shared.exists() else [])


def _owner(path: Path) -> int | None:
    """The process of a per-process file; None for the shared file."""
    return None if path.name == SHARED_NAME else _pid_of(path)


def read_records(directory: Path) -> list[Record]:
    """Every record of the run, ordered by time (stable for equal times)."""
    records: list[Record] = []
    for path in record_files(directory):
        records += _parse(_owner(path), _complete(path.read_bytes()))
    records.sort(key=lambda r: r.t)
    return records


def _read_written(f: BinaryIO) -> bytes:
    """Read up to the zero-filled tail, not the whole preallocated file."""
    parts: list[bytes] = []
    while True:
        block = f.read(1 << 16)
        parts.append(block)
        if len(block) < 1 << 16 or b"\0" in block:
            return b"".join(parts)


class RecordTail:
    """New complete records of a run directory, as they are written."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._offsets: dict[Path, int] = {}

    def poll(self) -> list[Record]:
        new: list[Record] = []
        for path in record_files(self.directory):
            offset = self._offsets.get(path, 0)
            try:
                with path.open("rb") as f:
                    f.seek(offset)
                    chunk = _complete(_read_written(f))
            except OSError:
                continue
            if chunk:
                self._offsets[path] = offset + len(chunk)
                new += _parse(_owner(path), chunk)
        new.sort(key=lambda r: r.t)
        return new
