"""Progress of a long sweep: a rich bar on a terminal, a line on stderr every few seconds in a CI log."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: Without a terminal, a progress line goes to stderr at most this often (seconds).
PROGRESS_SECONDS = 5.0


@contextmanager
def progress(
    mode: str | None, total: int, every: float | None = None
) -> Iterator[Callable[[str], Callable[[], None]]]:
    """Yield ``step(description)``: shows what runs now and returns the call that marks it done.

    ``mode`` "bar": a rich progress bar (on a terminal); "lines": a line on
    stderr at most every ``every`` seconds (default ``PROGRESS_SECONDS``) and one at the end (a CI log);
    None: nothing.
    """
    every = PROGRESS_SECONDS if every is None else every
    if mode == "bar":
        from rich.progress import Progress

        with Progress() as progress:
            task = progress.add_task("agreement report", total=total)

            def step(description: str) -> Callable[[], None]:
                progress.update(task, description=description)
                return lambda: progress.advance(task)

            yield step
        return
    started = last = time.monotonic()
    done = [0]

    def line(description: str) -> None:
        elapsed = time.monotonic() - started
        print(f"report: {done[0]}/{total} network x adapter runs done, {elapsed:.0f} s; {description}",
              file=sys.stderr, flush=True)

    def step(description: str) -> Callable[[], None]:
        nonlocal last
        if mode == "lines" and time.monotonic() - last >= every:
            last = time.monotonic()
            line(f"now {description}")

        def finished() -> None:
            done[0] += 1

        return finished

    yield step
    if mode == "lines":
        line("sweep finished")
