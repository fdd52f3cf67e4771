"""Progress of long work on stderr: a bar redrawn in place on a terminal, plain lines
(at most one every few seconds) when stderr is a file or a pipe."""

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

    def _show(self, done: int, note: str) -> None:
        if self.total:
            done = min(done, self.total)
            filled = _WIDTH * done // self.total
            bar = f" [{'#' * filled}{'.' * (_WIDTH - filled)}] {100 * done // self.total}%"
        else:
            bar = ""
        text = f"{self.label}{bar} {note}".rstrip()
        if self.terminal:
            print(f"\r{text}\x1b[K", end="", file=self.stream, flush=True)
        else:
            print(text, file=self.stream, flush=True)
