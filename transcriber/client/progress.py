"""Progress for the command-line client: one line per file with name, stage, bar, percent and
sub-line; with submit --text, the segments as they are decoded go above the block.

On a terminal, rich's Live display redraws the block in place. Every line is cut to the
terminal's width, so the terminal never wraps a line that the redraw does not know about (the
hand-made redraw before it left a stale copy of the first line above the block each time a
long error message wrapped). A failed file's message is not cut: it wraps inside its own row,
which rich renders and counts itself. Anywhere else (a pipe, a log file) a plain line is printed
at each stage change and once more at the end, for scripts and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from transcriber.protocol.stages import Stage

BAR = 24
NAME_MAX = 32
LABEL = max(len(stage.label) for stage in Stage)
STYLES = {Stage.COMPLETE: "green", Stage.FAILED: "red", Stage.CANCELLED: "yellow"}


@dataclass(frozen=True)
class Row:
    """What one file's line shows. `stage` is None while the file waits for its turn."""

    stage: Stage | None = None
    pct: int = 0
    detail: str = "waiting"

    @property
    def label(self) -> str:
        return self.stage.label if self.stage else "Waiting"

    def plain(self, name: str) -> str:
        if self.stage is None:
            return f"{name}: waiting"
        filled = BAR * self.pct // 100
        bar = "#" * filled + "-" * (BAR - filled)
        return f"{name}: [{bar}] {self.pct:3d}% {self.label:<12} {self.detail}"


def error_text(error: dict[str, Any]) -> str:
    return f"{error.get('message')} ({error.get('code')})"


class Bars:
    def __init__(self, names: list[str], out: TextIO) -> None:
        self.names = names
        self.out = out
        self.rows = {name: Row() for name in names}
        self.console = Console(file=out, highlight=False)
        self.live: Live | None = None
        if self.console.is_terminal and not self.console.is_dumb_terminal:
            self.live = Live(
                console=self.console,
                get_renderable=self._table,
                refresh_per_second=10,
                transient=False,
            )
            self.live.start()

    def uploading(self, name: str, sent: int, total: int) -> None:
        pct = sent * 100 // total if total else 100
        detail = f"Uploaded {sent / 1e6:.1f} of {total / 1e6:.1f} MB"
        self._set(name, Row(Stage.UPLOADING, pct, detail))

    def update(self, name: str, snap: dict[str, Any]) -> None:
        stage = Stage(snap["stage"])
        pct = snap["stage_progress"] if stage is Stage.UPLOADING else snap["progress"]
        detail = error_text(snap["error"]) if snap.get("error") else snap["detail"]
        self._set(name, Row(stage, pct, detail))

    def fail(self, name: str, error: dict[str, Any]) -> None:
        self._set(name, Row(Stage.FAILED, 0, error_text(error)))

    def line(self, text: str) -> None:
        """A line of the transcript as it comes: on a terminal, above the block of bars (which
        stays at the bottom, redrawn in place); elsewhere, a line of its own."""
        if self.live:
            self.live.console.print(Text(text))
        else:
            print(text, file=self.out, flush=True)

    def note(self, text: str) -> None:
        if self.live:
            self.live.console.print(Text(text, style="dim"))
        else:
            print(text, file=self.out, flush=True)

    def close(self) -> None:
        if self.live:
            self.live.stop()
            self.live = None
            return
        for name in self.names:
            print(self.rows[name].plain(name), file=self.out, flush=True)

    def _set(self, name: str, row: Row) -> None:
        row = Row(row.stage, max(0, min(100, row.pct)), row.detail)
        before = self.rows[name]
        self.rows[name] = row
        if self.live:
            if before.stage != row.stage:
                self.live.refresh()
        elif before.stage != row.stage:
            print(row.plain(name), file=self.out, flush=True)

    def _table(self) -> Table:
        name_w, bar_w = self._widths(self.console.width)
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(no_wrap=True, overflow="ellipsis", width=name_w)
        table.add_column(no_wrap=True, overflow="ellipsis", width=LABEL)
        if bar_w:
            table.add_column(width=bar_w)
        table.add_column(no_wrap=True, justify="right", width=4)
        table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        for name in self.names:
            row = self.rows[name]
            style = STYLES.get(row.stage, "cyan") if row.stage else "dim"
            failed = row.stage is Stage.FAILED
            # An error is read in full: it wraps inside its row instead of being cut.
            detail = (
                Text(row.detail, style="red", no_wrap=False, overflow="fold")
                if failed
                else Text(row.detail, style="dim", no_wrap=True)
            )
            cells: list[RenderableType] = [Text(name, style="bold"), Text(row.label, style=style)]
            if bar_w:
                cells.append(ProgressBar(completed=row.pct, width=bar_w, complete_style=style))
            table.add_row(*cells, f"{row.pct}%", detail)
        return table

    def _widths(self, width: int) -> tuple[int, int]:
        """Name and bar widths for a terminal this wide: the percent and a part of the sub-line
        stay in sight; the bar shrinks first, and goes on a very narrow terminal."""
        name_w = min(max(map(len, self.names)), NAME_MAX, max(8, width // 4))
        room = width - name_w - LABEL - 4 - 3
        bar_w = min(BAR, (room - 1) // 2)
        return name_w, bar_w if bar_w >= 8 else 0
