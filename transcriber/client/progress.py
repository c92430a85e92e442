"""Progress bars for the command-line client: one line per file with stage and percent.

On a terminal the lines are redrawn in place; otherwise a line is printed at each stage change.
"""

from __future__ import annotations

from typing import Any, TextIO

WIDTH = 24


class Bars:
    def __init__(self, names: list[str], out: TextIO) -> None:
        self.names = names
        self.out = out
        self.tty = out.isatty()
        self.lines = {n: f"{n}: waiting" for n in names}
        self.stages: dict[str, str] = {}
        self._drawn = False

    def uploading(self, name: str, sent: int, total: int) -> None:
        pct = sent * 100 // total if total else 100
        self._set(name, "Uploading", pct, f"{sent / 1e6:.1f} of {total / 1e6:.1f} MB")

    def update(self, name: str, snap: dict[str, Any]) -> None:
        stage = snap["stage"]
        pct = snap["stage_progress"] if stage == "uploading" else snap["progress"]
        detail = snap["detail"]
        if snap.get("error"):
            detail = f"{snap['error']['message']} ({snap['error']['code']})"
        self._set(name, stage.capitalize(), pct, detail)

    def fail(self, name: str, error: dict[str, Any]) -> None:
        self._set(name, "Failed", 0, f"{error.get('message')} ({error.get('code')})")

    def note(self, text: str) -> None:
        if not self.tty:
            print(text, file=self.out, flush=True)

    def _set(self, name: str, stage: str, pct: int, detail: str) -> None:
        filled = WIDTH * max(0, min(100, pct)) // 100
        bar = "#" * filled + "-" * (WIDTH - filled)
        self.lines[name] = f"{name}: [{bar}] {pct:3d}% {stage:<12} {detail}"
        if self.tty:
            self._draw()
        elif self.stages.get(name) != stage:
            self.stages[name] = stage
            print(self.lines[name], file=self.out, flush=True)

    def _draw(self) -> None:
        if self._drawn:
            self.out.write(f"\x1b[{len(self.names)}F")
        for name in self.names:
            self.out.write("\x1b[2K" + self.lines[name][:200] + "\n")
        self.out.flush()
        self._drawn = True

    def close(self) -> None:
        if not self.tty:
            for name in self.names:
                print(self.lines[name], file=self.out, flush=True)
