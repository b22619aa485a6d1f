"""The training progress display: a rich bar with loss, tokens/s and ETA, or plain lines when not on a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

PLAIN_EVERY = 10
"""Without a terminal (CI logs, pipes), print one line every this many steps."""


class TrainProgress:
    """Shows training steps; use as a context manager around the loop."""

    def __init__(self, console: Console, total: int, start: int = 0):
        self.console = console
        self.total = total
        self.live = console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[speed]:.0f} tok/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            disable=not self.live,
        )
        self.task = self.progress.add_task("train", total=total, completed=start, loss=float("nan"), speed=0.0)

    def __enter__(self) -> TrainProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def update(self, step: int, *, loss: float, tokens_per_second: float) -> None:
        """Record that `step` steps are done."""
        self.progress.update(self.task, completed=step, loss=loss, speed=tokens_per_second)
        if not self.live and (step % PLAIN_EVERY == 0 or step == self.total):
            self.console.print(f"step {step}/{self.total}  loss {loss:.4f}  {tokens_per_second:.0f} tok/s")

    def note(self, message: str) -> None:
        """Print a message above the bar."""
        self.console.print(message)


def count_progress() -> Progress:
    """A bar for counted work (teacher requests, answers generated) on stderr, so stdout stays clean for results."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
