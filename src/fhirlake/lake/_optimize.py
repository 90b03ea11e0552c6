"""Compaction of gold tables (``fhirlake lake optimize``): fewer files, rows in code order.

Ingests add files per export and partition; a query pays a cost per file, and rows in arrival
order make every row group span every code. :func:`compact_gold` rewrites a table's partitions
that need it in one Delta commit, checking that every row is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fhirlake.lake._delta import PARTITION, DataFile, DeltaFolder
from fhirlake.lake._duck import files_view, quote
from fhirlake.lake._gold import ROWS_PER_GROUP, VIEW_HASH_KEY, GoldView
from fhirlake.lake.errors import LakeError

if TYPE_CHECKING:
    from fhirlake.lake._ingest import _Merge

__all__ = ["CompactCounts", "OptimizeReport", "compact_gold"]


@dataclass(frozen=True)
class CompactCounts:
    """What :meth:`LakeWriter.optimize` did to one gold table."""

    files_before: int
    files_after: int
    rows: int
    partitions: int
    sorted_by: str | None


@dataclass(frozen=True)
class OptimizeReport:
    """The outcome of :meth:`Lake.optimize`: the tables compacted and the snapshot recorded."""

    snapshot_id: int | None
    compacted: Mapping[str, CompactCounts]
    seconds: float

    def lines(self) -> list[str]:
        """The report as text lines (what the CLI prints)."""
        if not self.compacted:
            return ["nothing to compact: every gold partition is one file in code order"]
        out = [f"snapshot {self.snapshot_id}: {len(self.compacted)} gold tables compacted in {self.seconds:.1f} s"]
        out += [f"  gold.{name}: {c.files_before} → {c.files_after} files in {c.partitions} partitions, {c.rows:,} rows"
                + (f", by {c.sorted_by}" if c.sorted_by else "") for name, c in sorted(self.compacted.items())]
        return out



def compact_gold(merge: _Merge, view: GoldView, *, force: bool = False) -> CompactCounts | None:
    """Rewrite the partitions of a gold table that need it (see :meth:`LakeWriter.optimize`); None if none do."""
    folder = DeltaFolder(merge.storage, view.table)
    table = merge.table(view.table)
    if table is None or not view.built_by_this_view(table):
        return None  # missing, or built by another definition of the view: `fhirlake lake build` first
    files = folder.files(table)
    partitions: dict[int | None, list[DataFile]] = {}
    for file in files:
        partitions.setdefault(file.partition, []).append(file)
    never = force or not any(c.get("fhirlake.operation") == "optimize" for c in table.history())
    chosen = {year: group for year, group in partitions.items() if never or len(group) > 1}
    if not chosen:
        return None
    order = f" ORDER BY {quote(view.sort_column)} NULLS LAST" if view.sort_column else ""
    removed: list[DataFile] = []
    added: list[DataFile] = []
    for year, group in sorted(chosen.items(), key=lambda item: (item[0] is None, item[0] or 0)):
        files_view(merge.cursor(), "compact_rows", [folder.file_uri(f) for f in group], {})
        written = merge.write(folder, f"SELECT *, CAST($year AS INTEGER) AS {quote(PARTITION)} FROM compact_rows{order}",
                              ROWS_PER_GROUP, {"year": year})
        rows_in, rows_out = sum(f.rows for f in group), sum(f.rows for f in written)
        if rows_out != rows_in:
            raise LakeError(f"gold.{view.name}: compacting partition {year} wrote {rows_out} rows "
                            f"for {rows_in}: nothing was committed")
        removed += group
        added += written
    merge.commit(folder, None, add=added, remove=removed,
                 metadata={**merge.metadata, VIEW_HASH_KEY: view.sha, "fhirlake.operation": "optimize"})
    return CompactCounts(len(removed), len(added), sum(f.rows for f in added), len(chosen), view.sort_column)
