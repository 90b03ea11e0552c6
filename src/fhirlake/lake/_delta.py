"""Delta tables at file level: write Parquet files, then commit adds and removes in one version.

deltalake commits; the files are written by pyarrow's dataset writer (streaming, partitioned
by ``_year``, through the lake's file system). Controlling the files lets an incremental merge
rewrite only the files that hold changed keys, and lets a run stage its new rows once and then
move those very files into the table. Every table keeps its whole log (no expired-log cleanup),
so any recorded version can be read back for ``as_of``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable, PostCommitHookProperties
from deltalake import Schema as DeltaSchema
from deltalake._internal import RemoveAction
from deltalake.exceptions import DeltaError, TableNotFoundError
from deltalake.transaction import AddAction, create_table_with_add_actions

from fhirlake.lake._storage import Storage
from fhirlake.lake.errors import LakeError

__all__ = ["PARTITION", "DataFile", "DeltaFolder", "write_files"]

#: Every silver and gold table is partitioned by the UTC year of the row's lastUpdated: a nightly
#: export mostly changes recent resources, so a merge rewrites the recent partitions only.
PARTITION = "_year"
_CONFIGURATION: dict[str, str | None] = {"delta.enableExpiredLogCleanup": "false"}
_HOOKS = PostCommitHookProperties(create_checkpoint=True, cleanup_expired_logs=False)


@dataclass(frozen=True)
class DataFile:
    """A Parquet file of a table: its path relative to the table, size, rows, partition value."""

    path: str
    size: int
    rows: int
    partition: int | None


def write_files(
    reader: pa.RecordBatchReader, fs: pafs.FileSystem, base_dir: str, *, rows_per_group: int, rows_per_file: int = 1_000_000
) -> list[DataFile]:
    """Write a stream of batches as Parquet files under ``base_dir`` (in ``_year=...`` folders when
    the stream has a ``_year`` column, which is then kept out of the files, as Delta does).

    Batches are consumed one at a time and each partition buffers at most one row group, so the
    memory used is bounded by the partitions and the row group size, whatever the data size.
    """
    writer = _PartitionedWriter(fs, base_dir.rstrip("/"), reader.schema, rows_per_group, rows_per_file)
    try:
        for batch in reader:
            writer.add(batch)
    finally:
        files = writer.close()
    return files


class _PartitionedWriter:
    """One open Parquet file and one row-group buffer per partition value."""

    def __init__(self, fs: pafs.FileSystem, base_dir: str, schema: pa.Schema, rows_per_group: int, rows_per_file: int) -> None:
        self.fs, self.base_dir = fs, base_dir
        self.partitioned = PARTITION in schema.names
        self.schema = schema.remove(schema.get_field_index(PARTITION)) if self.partitioned else schema
        self.rows_per_group, self.rows_per_file = rows_per_group, rows_per_file
        self.prefix = f"part-{uuid.uuid4().hex}"
        self.buffers: dict[int | None, list[pa.RecordBatch]] = {}
        self.buffered: dict[int | None, int] = {}
        self.open: dict[int | None, tuple[pq.ParquetWriter, str, int]] = {}
        self.done: list[DataFile] = []
        self.count = 0

    def add(self, batch: pa.RecordBatch) -> None:
        if not self.partitioned:
            self._buffer(None, batch)
            return
        values = batch.column(PARTITION)
        rows = batch.drop_columns([PARTITION])
        for value in pc.unique(values).to_pylist():
            mask = pc.is_null(values) if value is None else pc.equal(values, value)
            self._buffer(value, rows.filter(mask))

    def _buffer(self, partition: int | None, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self.buffers.setdefault(partition, []).append(batch)
        self.buffered[partition] = self.buffered.get(partition, 0) + batch.num_rows
        if self.buffered[partition] >= self.rows_per_group:
            self._flush(partition)

    def _flush(self, partition: int | None) -> None:
        batches = self.buffers.pop(partition, [])
        self.buffered.pop(partition, None)
        if not batches:
            return
        if partition not in self.open:
            folder = "" if not self.partitioned else f"{PARTITION}={'__HIVE_DEFAULT_PARTITION__' if partition is None else partition}/"
            relative = f"{folder}{self.prefix}-{self.count}.parquet"
            self.count += 1
            self.fs.create_dir(f"{self.base_dir}/{folder}".rstrip("/"), recursive=True)
            parquet = pq.ParquetWriter(f"{self.base_dir}/{relative}", self.schema, filesystem=self.fs, compression="zstd")
            self.open[partition] = (parquet, relative, 0)
        parquet, relative, rows = self.open[partition]
        table = pa.Table.from_batches(batches, schema=self.schema)
        parquet.write_table(table, row_group_size=max(table.num_rows, 1))
        rows += table.num_rows
        self.open[partition] = (parquet, relative, rows)
        if rows >= self.rows_per_file:
            self._close(partition)

    def _close(self, partition: int | None) -> None:
        parquet, relative, rows = self.open.pop(partition)
        parquet.close()
        size = self.fs.get_file_info(f"{self.base_dir}/{relative}").size
        self.done.append(DataFile(relative, int(size), rows, partition))

    def close(self) -> list[DataFile]:
        for partition in list(self.buffers):
            self._flush(partition)
        for partition in list(self.open):
            self._close(partition)
        return self.done


def _partition_of(relative: str) -> int | None:
    head = relative.split("/", 1)[0]
    key, _, value = head.partition("=")
    return int(value) if key == PARTITION and value.lstrip("-").isdigit() else None


class DeltaFolder:
    """One Delta table of the lake, named by its folder (``silver/Observation``, ``gold/patient``)."""

    def __init__(self, storage: Storage, name: str) -> None:
        self.storage = storage
        self.name = name
        self.uri = storage.uri(*name.split("/"))

    def open(self, version: int | None = None) -> DeltaTable | None:
        """The table (at ``version``), or None when there is no table yet."""
        try:
            return DeltaTable(self.uri, version=version)
        except TableNotFoundError:
            return None
        except DeltaError as exc:
            raise LakeError(f"{self.uri}: cannot read the Delta table ({exc})") from exc

    @staticmethod
    def files(table: DeltaTable | None) -> list[DataFile]:
        """The data files of a table version."""
        if table is None:
            return []
        actions = pa.table(table.get_add_actions(flatten=True))
        column = f"partition.{PARTITION}"
        partitions = actions.column(column).to_pylist() if column in actions.column_names else [None] * actions.num_rows
        return [
            DataFile(str(path), int(size), int(rows or 0), None if part is None else int(part))
            for path, size, rows, part in zip(
                actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist(),
                actions.column("num_records").to_pylist(), partitions, strict=True)
        ]

    def file_uri(self, file: DataFile) -> str:
        return f"{self.uri}/{file.path}"

    def relative_path(self, file: DataFile) -> str:
        """The file's path relative to the lake root (``gold/patient/part-0.parquet``)."""
        return f"{self.name}/{file.path}"

    def write(self, reader: pa.RecordBatchReader, *, rows_per_group: int) -> list[DataFile]:
        """Write files into the table's folder; they are not part of the table until committed."""
        return write_files(reader, self.storage.fs, self.storage.path(*self.name.split("/")), rows_per_group=rows_per_group)

    def commit(
        self, table: DeltaTable | None, schema: pa.Schema | None, *, add: Sequence[DataFile], remove: Sequence[DataFile] = (),
        metadata: Mapping[str, str], overwrite: bool = False, description: str | None = None,
    ) -> DeltaTable:
        """Commit ``add`` and ``remove`` as one version and return the table at that version.

        With no ``table`` (or ``overwrite``) the table is created (or replaced) with ``schema``;
        otherwise the files are added to and removed from the existing table, whose schema stays.
        """
        now = int(time.time() * 1000)
        creating = table is None or overwrite
        if creating and schema is None:
            raise ValueError("a schema is needed to create or replace a table")
        partitioned = PARTITION in (schema.names if creating and schema is not None else table.metadata().partition_columns if table else [])
        adds = [
            AddAction(path=f.path, size=f.size, partition_values=_partition_values(f, partitioned), modification_time=now,
                      data_change=True, stats=orjson.dumps({"numRecords": f.rows}).decode())
            for f in add
        ]
        properties = CommitProperties(custom_metadata=dict(metadata))
        partition_by = [PARTITION] if partitioned else None
        try:
            if creating:
                assert schema is not None
                create_table_with_add_actions(
                    self.uri, DeltaSchema.from_arrow(schema), adds, mode="overwrite" if table is not None else "error",
                    partition_by=partition_by, description=description, configuration=_CONFIGURATION,
                    commit_properties=properties, post_commithook_properties=_HOOKS,
                )
                return DeltaTable(self.uri)
            assert table is not None
            removes = [
                RemoveAction(path=f.path, data_change=True, deletion_timestamp=now, size=f.size,
                             partition_values=_partition_values(f, partitioned))
                for f in remove
            ]
            table.create_write_transaction(
                [*removes, *adds], mode="append", schema=table.schema(), partition_by=partition_by,
                commit_properties=properties, post_commithook_properties=_HOOKS,
            )
            table.update_incremental()
            return table
        except DeltaError as exc:
            raise LakeError(f"{self.uri}: the commit failed ({exc})") from exc


def _partition_values(file: DataFile, partitioned: bool) -> dict[str, str | None]:
    if not partitioned:
        return {}
    return {PARTITION: None if file.partition is None else str(file.partition)}
