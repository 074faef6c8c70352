"""Progress on stderr: a live rich view on a terminal, plain lines otherwise, nothing with --json."""

from __future__ import annotations

import threading
import time

from pkgrepo.builder.schedule import Events
from pkgrepo.errors import PkgrepoError


class Progress(Events):
    """Messages (`name: what it is doing`) and the build scheduler's events.

    On a terminal, a live table shows what is building (with its current step,
    job share and time), and how many are queued, done and failed."""

    def __init__(self, quiet: bool):
        from rich.console import Console

        self.quiet = quiet
        self.console = Console(stderr=True, highlight=False)
        self.live = None
        self.total = 0
        self.lock = threading.Lock()
        self.building: dict[str, tuple[int, float, str]] = {}  # name -> (jobs, started, step)
        self.done = self.failures = 0
        self.last = "starting"

    def __enter__(self) -> Progress:
        if not self.quiet and self.console.is_terminal:
            from rich.live import Live

            self.live = Live(
                self._render(),
                console=self.console,
                refresh_per_second=4,
                transient=True,
                get_renderable=self._render,
            )
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def _render(self):
        from rich.table import Table

        with self.lock:
            table = Table(box=None, show_header=False, pad_edge=False)
            now = time.monotonic()
            for name, (jobs, started, step) in sorted(self.building.items()):
                table.add_row(f"[bold]{name}[/]", f"-j{jobs}", f"{now - started:5.0f}s", step)
            queued = max(0, self.total - self.done - self.failures - len(self.building))
            table.add_row(
                "",
                "",
                "",
                f"{len(self.building)} building, {queued} queued, {self.done} done"
                + (f", {self.failures} failed" if self.failures else "")
                + f" | {self.last}",
            )
            return table

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        name, sep, what = message.partition(": ")
        with self.lock:
            if sep and name in self.building:
                jobs, started, _ = self.building[name]
                self.building[name] = (jobs, started, what)
            else:
                self.last = message
        if self.live is None:
            self.console.print(message, markup=False, soft_wrap=True)

    def planned(self, names: list[str]) -> None:
        self.total = len(names)

    def started(self, name: str, jobs: int) -> None:
        with self.lock:
            self.building[name] = (jobs, time.monotonic(), "starting")

    def finished(self, name: str, result: object) -> None:
        with self.lock:
            self.building.pop(name, None)
            self.done += 1

    def failed(self, name: str, error: PkgrepoError) -> None:
        with self.lock:
            self.building.pop(name, None)
            self.failures += 1
        self._line(f"{name}: FAILED: {error}")

    def skipped(self, name: str, because: str) -> None:
        self._line(f"{name}: not built, it needs {because}, which failed")

    def _line(self, text: str) -> None:
        """Above the live table only: without one, the command's own error line says it all."""
        if not self.quiet and self.live is not None:
            self.live.console.print(text, markup=False, soft_wrap=True)
