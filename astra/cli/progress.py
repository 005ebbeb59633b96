"""The progress of the long commands (backfill, materialize, parity, docs), on stderr.

A command names its stages as it finishes them (`stages.done("computed", rows)`) and knows nothing
of how they are shown:

* not on a terminal (a pipe, a file, CI), one line per stage, as logs and tests read them:
  `backfill: computed 20,000 rows (0.41 s)`;
* on a terminal, a live display (rich): each finished stage stays as a line, under them a bar of
  the stages done with a spinner and the elapsed time of the one running; the bar goes away when
  the last stage is done (before the command prints its own results on stdout).

Either way, a command that ends well ends with one summary line: the rows, where the output went
(the command's --out or --state) and the total seconds.  A command that fails gets none: its
error is the last line.  `ASTRA_PROGRESS=lines` asks for the lines on a terminal too.
"""

from __future__ import annotations

import os
import sys
import time

import click

# How many stages each command reports, to draw its bar (from its parameters: a snapshot backfill
# reads no spine).  A command not listed gets a bar without an end.
EXPECTED = {
    "backfill": lambda params: 3 if params.get("every") is not None else 4,
    "materialize": lambda params: 3,
    "parity": lambda params: 3,
    "docs": lambda params: 2 if params.get("no_stats") else 3,
}
OUTPUTS = ("out", "state")  # the parameters that name where a command's result goes

_showing: Live | None = None  # the display on the terminal now, if any


def interrupt() -> None:
    """Take the live display off the terminal: an error is about to be printed, and the last line
    a failed command leaves is its error."""
    if _showing is not None:
        _showing.stop()


def above(text: str) -> bool:
    """Print `text` (a note) above the live display, keeping it; False when there is none."""
    if _showing is None:
        return False
    from rich.text import Text

    _showing.console.print(Text(text))
    return True


def live_terminal() -> bool:
    """True when stderr is a terminal that can redraw a line (and the user did not ask for lines)."""
    if os.environ.get("ASTRA_PROGRESS", "").lower() == "lines" or os.environ.get("TERM") == "dumb":
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # a replaced or closed stderr
        return False


class Stages:
    """One command's stages: `done(what, rows)` as each ends; the summary when the command ends."""

    def __init__(self, command: str):
        self.command = command
        self.t0 = self.start = time.perf_counter()
        self.counted: str | None = None  # the last count given, with its unit: `20,000 rows`
        self.count = 0
        ctx = click.get_current_context(silent=True)
        params = ctx.params if ctx is not None else {}
        self.output = next((str(params[p]) for p in OUTPUTS if params.get(p) is not None), None)
        expected = EXPECTED.get(command)
        self.expected = expected(params) if expected is not None else None
        # only inside a command, whose end (the close callback) is sure to take the display away
        self.live = Live(command, self.expected) if ctx is not None and live_terminal() else None
        if ctx is not None:  # the summary, once the command has returned (or exited)
            ctx.call_on_close(self._finish)

    def done(self, what: str, rows: int | None = None, unit: str = "rows") -> None:
        """A stage has ended; `rows` counts what it made (in `unit`s), which the summary repeats."""
        now = time.perf_counter()
        seconds, self.t0 = now - self.t0, now
        self.count += 1
        if rows is not None:
            self.counted = f"{rows:,} {unit}"
        counted = f" {rows:,} {unit}" if rows is not None else ""
        if self.live is not None:
            self.live.stage(f"{what}{counted}", seconds, last=self.count == self.expected)
        else:
            click.echo(f"{self.command}: {what}{counted} ({seconds:.2f} s)", err=True)

    @property
    def total(self) -> float:
        return time.perf_counter() - self.start

    def summary(self) -> str:
        """`backfill: all done: 20,000 rows -> training.parquet (0.47 s)`."""
        parts = [self.counted if self.counted is not None else f"{self.count} stages"]
        if self.output is not None:
            parts.append(f"-> {self.output}")
        return f"{self.command}: all done: {' '.join(parts)} ({self.total:.2f} s)"

    def _finish(self) -> None:
        failure = sys.exc_info()[1]  # what is ending the command, if anything
        ok = failure is None or (isinstance(failure, SystemExit) and failure.code in (0, None))
        if self.live is not None:
            self.live.stop()
        if ok and self.count:
            if self.live is not None:
                self.live.summary(self.summary())
            else:
                click.echo(self.summary(), err=True)


class Live:
    """The terminal display: finished stages as lines, a bar and spinner for the running one."""

    def __init__(self, command: str, expected: int | None):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(file=sys.stderr)
        columns = [SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn()]
        if expected is not None:
            columns += [MofNCompleteColumn(), TextColumn("stages")]
        self.progress = Progress(*columns, TimeElapsedColumn(), console=self.console, transient=True,
                                 redirect_stdout=False, redirect_stderr=False)
        self.task = self.progress.add_task(command, total=expected)
        self.running = True
        self.progress.start()
        global _showing
        _showing = self
        # Anything else written to the terminal (an error echoed by a command, a library's warning)
        # first takes the display away, instead of being drawn into the middle of the bar.
        self.guarded = {name: getattr(sys, name) for name in ("stdout", "stderr") if _is_tty(getattr(sys, name))}
        for name, stream in self.guarded.items():
            setattr(sys, name, _Interrupting(stream))

    def stage(self, text: str, seconds: float, last: bool) -> None:
        from rich.text import Text

        # Text, not markup: a stage names paths, and `[x]` in a path is not a style
        self.console.print(Text.assemble(("✓ ", "green"), text, (f" ({seconds:.2f} s)", "dim")))
        self.progress.advance(self.task)
        if last:  # the command prints its results next: no bar under them
            self.stop()

    def stop(self) -> None:
        global _showing
        for name, stream in self.guarded.items():
            if isinstance(getattr(sys, name), _Interrupting):
                setattr(sys, name, stream)
        if self.running:
            self.running = False
            self.progress.stop()
        if _showing is self:
            _showing = None

    def summary(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text(text, style="bold"))


def _is_tty(stream) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Interrupting:
    """A text stream that stops the live display before its first write, then writes through."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        if not isinstance(text, str):  # a text stream, as click checks before wrapping one
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        interrupt()
        return self._stream.write(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)
