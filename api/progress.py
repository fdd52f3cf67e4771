"""Progress of long work on stderr: a bar redrawn in place on a terminal; plain lines (at
most one every few seconds, and the last) when stderr is a file or a pipe, which keeps every
line: the share done in figures, never a bar drawn into it."""

import sys
import time
from typing import TextIO

_WIDTH = 40
_REDRAW_SECONDS = 0.1
_LINE_SECONDS = 5.0


class Progress:
    def __init__(self, label: str, total: int | None, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total  # None: unknown (a pipe), counted without a bar
        self.stream = stream or sys.stderr
        self.terminal = self.stream.isatty()
        self._shown_at = 0.0
        self._drawn = False  # a bar on the terminal's line, not ended by a newline

    def update(self, done: int, note: str = "") -> None:
        now = time.monotonic()
        if now - self._shown_at < (_REDRAW_SECONDS if self.terminal else _LINE_SECONDS):
            return
        self._shown_at = now
        self._show(done, note)

    def finish(self, done: int, note: str = "") -> None:
        self._show(done, note)
        if self.terminal:
            print(file=self.stream, flush=True)
            self._drawn = False

    def clear(self) -> None:
        """Erases the bar before other lines are written to the terminal (they would follow
        it on its line); the next update draws it again below them."""
        if self._drawn:
            print("\r\x1b[K", end="", file=self.stream, flush=True)
            self._drawn = False
            self._shown_at = 0.0

    def _show(self, done: int, note: str) -> None:
        parts = [self.label]
        if self.total:
            done = min(done, self.total)
            if self.terminal:
                filled = _WIDTH * done // self.total
                parts.append(f"[{'#' * filled}{'.' * (_WIDTH - filled)}]")
            parts.append(f"{100 * done // self.total}%")
        text = " ".join([*parts, note]).rstrip()
        if self.terminal:
            print(f"\r{text}\x1b[K", end="", file=self.stream, flush=True)
            self._drawn = True
        else:
            print(text, file=self.stream, flush=True)
