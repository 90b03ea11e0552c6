"""One progress display for every long command: a rich bar with count, rate and ETA on a terminal,
nothing at all when the output goes to a file, a pipe or a log (CI, cron, Dagster).

Library functions take a plain callback (``progress: Callable[[int], None] | None``) and know
nothing of rich; the command-line modules make the callback here::

    with meter("pseudonymise", total=records_expected, unit="records") as advance:
        pseudonymize(batch, out, policy, key, progress=advance)

    with status("ingest") as say:                   # steps without a count: a spinner and the last step
        lake.ingest(batch, source="a", progress=say)
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["meter", "on_terminal", "status"]


def on_terminal() -> bool:
    """Whether progress should be shown: standard error is an interactive terminal."""
    return sys.stderr.isatty()


@contextmanager
def meter(description: str, *, total: float | None, unit: str) -> Iterator[Callable[[float], None]]:
    """A callback that advances a bar by its argument; a no-op when not on a terminal.

    ``total`` may be unknown (``None``): the bar then shows the count and the rate only.
    """
    if not on_terminal():
        yield lambda amount: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn(unit), TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task(description, total=total, rate="")

        def advance(amount: float) -> None:
            progress.advance(task, amount)
            speed = progress.tasks[0].speed
            progress.update(task, rate=f"{speed:,.0f} {unit}/s" if speed else "")

        yield advance


@contextmanager
def status(description: str) -> Iterator[Callable[[str], None]]:
    """A callback that shows the step just done beside a spinner; a no-op when not on a terminal."""
    if not on_terminal():
        yield lambda step: None
        return
    from rich.console import Console

    with Console(stderr=True).status(description) as shown:
        yield lambda step: shown.update(f"{description}: {step}")
