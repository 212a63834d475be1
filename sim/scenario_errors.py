"""What is wrong with a scenario file, said so that it can be fixed without a debugger.

Every problem names its place (`file:line:column`, and the key path such as
`main[2].spawn.target`), says what was expected and what was found, and quotes the
offending line with a caret under the column. A `ScenarioError` carries all the
problems of one file, so the user fixes them in one pass instead of one per run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong. `line` and `column` are 1-based; 0 when the problem has no
    place in the text (an unreadable file)."""

    source: str
    line: int
    column: int
    path: str
    message: str
    source_line: str = ""

    def sort_key(self) -> tuple[int, int, str, str]:
        return (self.line, self.column, self.path, self.message)

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}:{self.column}" if self.line else self.source
        what = f"{self.path}: {self.message}" if self.path else self.message
        if not self.line:
            return f"{where}: {what}"
        # Keep tabs before the caret so it lines up under the same column on screen.
        pad = "".join("\t" if c == "\t" else " " for c in self.source_line[: self.column - 1])
        return f"{where}: {what}\n    {self.source_line}\n    {pad}^"


class ScenarioError(Exception):
    """A scenario that cannot be loaded. `str()` is the complete report for the user."""

    def __init__(self, source: str, problems: Iterable[Problem]) -> None:
        self.source = source
        self.problems: list[Problem] = sorted(set(problems), key=Problem.sort_key)
        super().__init__(self.report())

    def report(self) -> str:
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [str(problem) for problem in self.problems]
        lines.append(f"{count} {noun} in {self.source}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()
