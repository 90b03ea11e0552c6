"""Progress bars and the closing summary of ``fhirlake export`` (rich), driven by client events."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from fhirlake.bulk._events import (
    BytesReceived,
    Event,
    ExportAbandoned,
    FileDone,
    JobDeleted,
    KickedOff,
    ManifestSaved,
    Polling,
    Retrying,
)
from fhirlake.bulk._export import ExportResult

__all__ = ["ProgressView", "print_summary"]


def _mb(count: float) -> str:
    return f"{count / 1_000_000:,.1f} MB"


class ProgressView:
    """Turns events into three bars (files, bytes, resources, with ETA) and one-line notices."""

    def __init__(self, console: Console, *, quiet: bool = False) -> None:
        self.console = console
        self.quiet = quiet
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description:<10}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=quiet,
        )
        self._status: TaskID | None = None
        self._files: TaskID | None = None
        self._bytes: TaskID | None = None
        self._resources: TaskID | None = None
        self._bytes_done = 0
        self._resources_done = 0
        self._files_done = 0
        self._files_total = 0
        self._resources_total: int | None = None

    def __enter__(self) -> ProgressView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def notice(self, text: str) -> None:
        """A line above the bars (shown even when quiet for warnings)."""
        self.progress.console.print(text, highlight=False, soft_wrap=True)

    def __call__(self, event: Event) -> None:
        if isinstance(event, BytesReceived):
            self._bytes_done += event.delta
            self._update_bytes()
        elif isinstance(event, FileDone):
            self._file_done(event)
        elif isinstance(event, Polling):
            self._polling(event)
        elif isinstance(event, Retrying):
            self.notice(
                f"[yellow]retry[/] {event.what}: {event.reason} (attempt {event.attempt}, next in {event.delay:g} s)"
            )
        elif isinstance(event, KickedOff):
            verb = "resuming" if event.resumed else "started"
            if not self.quiet:
                self.notice(f"{verb} export {event.export_id}; status at {event.status_url}")
        elif isinstance(event, ManifestSaved):
            self._manifest(event)
        elif isinstance(event, JobDeleted):
            if not event.ok:
                self.notice(
                    f"[yellow]note[/] the server did not accept DELETE of the job ({event.reason})"
                )
        elif isinstance(event, ExportAbandoned):
            self.notice(f"[yellow]abandoned[/] export {event.export_id}: {event.reason}")

    def _polling(self, event: Polling) -> None:
        text = f"{event.progress or 'in progress'}; next poll in {event.delay:g} s"
        if self._status is None:
            self._status = self.progress.add_task("server", total=None, detail=text)
        else:
            self.progress.update(self._status, detail=text)

    def _manifest(self, event: ManifestSaved) -> None:
        if self._status is not None:
            self.progress.update(self._status, total=1, completed=1, detail="export ready")
        self._files_total = event.to_download + event.already_saved
        self._resources_total = event.expected_resources
        self._files = self.progress.add_task("files", total=self._files_total, detail="")
        self._bytes = self.progress.add_task("bytes", total=None, detail="")
        self._resources = self.progress.add_task(
            "resources", total=self._resources_total, detail=""
        )
        if event.already_saved and not self.quiet:
            self.notice(
                f"{event.already_saved} files already saved by an earlier run; {event.to_download} to fetch"
            )
        self._update_counts()

    def _file_done(self, event: FileDone) -> None:
        self._files_done += 1
        if event.kind == "output":
            self._resources_done += event.lines
        if event.reused:
            self._bytes_done += event.bytes
            self._update_bytes()
        self._update_counts()

    def _update_counts(self) -> None:
        if self._files is not None:
            self.progress.update(
                self._files,
                completed=self._files_done,
                detail=f"{self._files_done}/{self._files_total}",
            )
        if self._resources is not None:
            total = f"/{self._resources_total:,}" if self._resources_total is not None else ""
            self.progress.update(
                self._resources,
                completed=self._resources_done,
                detail=f"{self._resources_done:,}{total}",
            )

    def _update_bytes(self) -> None:
        if self._bytes is not None:
            task = self.progress.tasks[self._bytes]
            speed = task.speed or 0.0
            self.progress.update(
                self._bytes,
                completed=self._bytes_done,
                detail=f"{_mb(self._bytes_done)} ({_mb(speed)}/s)",
            )


def print_summary(console: Console, result: ExportResult) -> None:
    """Per type: files, resources and bytes; then where it is, the watermark, and any issues."""
    console.print(f"export {result.export_id} of source {result.source!r}", highlight=False)
    table = Table()
    for column in ("type", "files", "resources", "size"):
        table.add_column(column, justify="left" if column == "type" else "right")
    by_type: dict[tuple[str, str], list[int]] = {}
    for record in result.files:
        key = (record.kind, record.type)
        entry = by_type.setdefault(key, [0, 0, 0])
        entry[0] += 1
        entry[1] += record.lines
        entry[2] += record.bytes
    for (kind, type_name), (files, lines, size) in sorted(by_type.items()):
        label = type_name if kind == "output" else f"{type_name} ({kind})"
        table.add_row(label, str(files), f"{lines:,}", _mb(size))
    total_resources = sum(result.resources.values())
    table.add_row(
        "total", str(len(result.files)), f"{total_resources:,}", _mb(result.bytes), style="bold"
    )
    console.print(table)
    rate = result.bytes / result.elapsed if result.elapsed > 0 else 0.0
    console.print(f"saved in {result.directory}")
    console.print(
        f"fetched {result.downloaded} files, kept {result.reused} from an earlier run, "
        f"in {result.elapsed:.1f} s ({_mb(rate)}/s)"
    )
    console.print(f"transactionTime {result.transaction_time} stored as the next --since auto")
    console.print("job deleted on the server" if result.job_deleted else "job left on the server")
    if result.issues:
        console.print(f"[yellow]the server reported {len(result.issues)} issues in error[]:[/]")
        for issue in result.issues[:10]:
            console.print(f"  {issue}", highlight=False)
        if len(result.issues) > 10:
            console.print(f"  ... and {len(result.issues) - 10} more (see the error/ folder)")
