"""Progress of long commands (ingest, index rebuild, sync): a bar on a terminal, plain lines otherwise.

Why both: a person at a terminal wants a live bar with rate and ETA on one line; a log file or a CI
job wants a readable line now and then, never carriage returns. The library reports counts; how
they are shown is decided here, once.
"""

from __future__ import annotations

import time
from typing import IO

#: seconds between plain progress lines when the stream is not a terminal
LINE_EVERY_S = 15.0
#: seconds between redraws of the bar on a terminal
BAR_EVERY_S = 0.25


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class Progress:
    """Counts of a long task shown on ``stream`` (nothing when it is None)."""

    def __init__(self, stream: IO[str] | None, *, total: int | None = None, unit: str = "studies",
                 label: str = "") -> None:
        self.stream = stream
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self.total = total if total and total > 0 else None
        self.unit = unit
        self.label = label
        self.start = time.monotonic()
        self.last = self.start
        self.done_count = 0
        self.detail = ""

    def line(self, done: int) -> str:
        """The text shown for ``done`` units so far (rate, and percent and ETA when the total is known)."""
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = done / elapsed
        head = f"{self.label}: " if self.label else ""
        if self.total:
            frac = min(1.0, done / self.total)
            eta = (self.total - done) / rate if rate > 0 and done < self.total else 0.0
            width = 24
            filled = int(frac * width)
            bar = "#" * filled + "-" * (width - filled)
            text = (f"{head}[{bar}] {frac:4.0%} {done:,}/{self.total:,} {self.unit}  {rate:,.0f}/s  "
                    f"ETA {_duration(eta)}")
        else:
            text = f"{head}{done:,} {self.unit}  {rate:,.0f}/s  {_duration(elapsed)} elapsed"
        return text + (f"  {self.detail}" if self.detail else "")

    def update(self, done: int, *, detail: str = "", force: bool = False) -> None:
        self.done_count = done
        if detail:
            self.detail = detail
        if self.stream is None:
            return
        now = time.monotonic()
        if not force and now - self.last < (BAR_EVERY_S if self.tty else LINE_EVERY_S):
            return
        self.last = now
        if self.tty:
            self.stream.write("\r" + self.line(done) + "\x1b[K")
        else:
            self.stream.write(self.line(done) + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the bar's line on a terminal (plain-line mode has nothing to close)."""
        if self.stream is not None and self.tty:
            self.stream.write("\r" + self.line(self.done_count) + "\x1b[K\n")
            self.stream.flush()
