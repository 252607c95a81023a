"""Progress of dataset preparation on stderr: a rich bar over the input bytes,
with the files and tokens done so far. Silent unless enabled."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class PrepareProgress:
    """Advanced once per finished file by that file's size: a cheap, honest
    measure (token counts are unknown until the end)."""

    def __init__(self, enabled: bool, total_bytes: int) -> None:
        self._bar: Progress | None = None
        self._task = TaskID(0)
        if enabled:
            self._bar = Progress(
                TextColumn("preparing dataset"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[files]} files, {task.fields[tokens]:,} tokens"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._task = self._bar.add_task("prepare", total=total_bytes, files=0, tokens=0)

    def __enter__(self) -> PrepareProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def file_done(self, size: int, files: int, tokens: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=size, files=files, tokens=tokens)

    def tokens(self, tokens: int) -> None:
        """Mid-file update (large JSONL/Parquet files hold many documents)."""
        if self._bar is not None:
            self._bar.update(self._task, tokens=tokens)
