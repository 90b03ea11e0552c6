"""Silver: one Delta table per resource type, one row per resource (the newest version).

An export is first *staged*: its NDJSON is read once by DuckDB into silver-shaped Parquet files
in the run's scratch folder. The *plan* then compares the staged keys with silver (key columns
only): a resource is changed when it is new or its ``last_updated`` is later than silver's, and
not older than a recorded deletion; the export's deletions remove the silver rows that are not
newer than the export. The plan lives in two tables of the run's in-memory DuckDB, ``changes``
and ``deletes``, that the gold and silver merges read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.fs as pafs

from fhirlake.errors import InputDataError
from fhirlake.lake._delta import PARTITION, DataFile, write_files
from fhirlake.lake._duck import files_view, run
from fhirlake.lake.errors import LakeError
from fhirlake.sof.inputs import line_problem, scan_lines

__all__ = [
    "PLAN_TABLES", "SILVER_COLUMNS", "SILVER_DESCRIPTIONS", "STORED_COLUMNS", "TOMBSTONE_COLUMNS", "Plan", "Staged",
    "plan_type", "register_deleted", "stage_type", "staged_view",
]

#: Silver columns and their DuckDB types; ``_year`` is the partition column.
SILVER_COLUMNS = {
    "resource_key": "VARCHAR", "patient_key": "VARCHAR", "source": "VARCHAR", "last_updated": "TIMESTAMPTZ",
    "export_id": "VARCHAR", "resource": "VARCHAR", PARTITION: "INTEGER",
}
#: The columns stored in silver's Parquet files (the partition value lives in the file's path).
STORED_COLUMNS = {k: v for k, v in SILVER_COLUMNS.items() if k != PARTITION}
SILVER_DESCRIPTIONS = {
    "resource_key": "The resource's id (pseudonymous); with source, the key rows are merged by.",
    "patient_key": "Key of the patient the resource belongs to (its own id for a Patient).",
    "source": "The source (hospital, server) the resource came from.",
    "last_updated": "meta.lastUpdated, else the transactionTime of the export that brought it.",
    "export_id": "The export that brought this version of the resource.",
    "resource": "The resource, as JSON text.",
}
TOMBSTONE_COLUMNS = {
    "source": "VARCHAR", "resource_type": "VARCHAR", "resource_key": "VARCHAR", "deleted_at": "TIMESTAMPTZ",
    "export_id": "VARCHAR",
}
ROWS_PER_GROUP = 4096  # resources are ~1-3 kB of JSON; small groups keep the writer's memory flat
_LARGE_OBJECT_SIZE = 512 * 1024 * 1024
_PATIENT_REFERENCE = "(^|/)Patient/([^/]+)(/_history/.*)?$"
_WRONG_LINE = "fhirlake: a line that is not a resource of the file's type with an id"

_STAGE = """
SELECT
  x[2] AS resource_key,
  CASE WHEN $type = 'Patient' THEN x[2] ELSE COALESCE(
    NULLIF(regexp_extract(x[4], $pattern, 2), ''), NULLIF(regexp_extract(x[5], $pattern, 2), ''),
    NULLIF(regexp_extract(x[6], $pattern, 2), '')) END AS patient_key,
  CAST($source AS VARCHAR) AS source,
  COALESCE(TRY_CAST(x[3] AS TIMESTAMPTZ), CAST($fallback AS TIMESTAMPTZ)) AS last_updated,
  CAST($export_id AS VARCHAR) AS export_id,
  CAST(json AS VARCHAR) AS resource,
  CAST(year(COALESCE(TRY_CAST(x[3] AS TIMESTAMPTZ), CAST($fallback AS TIMESTAMPTZ))) AS INTEGER) AS _year
FROM (
  SELECT json, json_extract_string(json, ['$.resourceType', '$.id', '$.meta.lastUpdated', '$.subject.reference',
                                          '$.patient.reference', '$.beneficiary.reference']) AS x
  FROM read_ndjson_objects($files, maximum_object_size := $size)
) AS lines
WHERE CASE WHEN x[1] IS DISTINCT FROM $type OR x[2] IS NULL THEN error($message) ELSE TRUE END
"""

# The plan of one type reads three temp views: staged_rows (with filename and file_row_number),
# silver_rows and tombstone_rows.
_STAGED_FILES = "INSERT INTO staged_files SELECT unnest($files), unnest(range($first, $first + len($files)))"

_PRESENT = """
CREATE OR REPLACE TEMP TABLE present AS
SELECT resource_key, last_updated FROM silver_rows
WHERE source = $source AND resource_key IN (
  SELECT resource_key FROM staged_rows UNION ALL SELECT resource_key FROM deleted_now WHERE resource_type = $type)
"""

_CHANGES = """
INSERT INTO changes
WITH incoming AS (
  SELECT s.resource_key, s.last_updated, f.file_index, s.file_row_number AS line
  FROM staged_rows AS s JOIN staged_files AS f ON f.file = s.filename
), winners AS (
  SELECT resource_key,
         arg_max(struct_pack(last_updated := last_updated, file_index := file_index, line := line),
                 struct_pack(t := last_updated, f := file_index, l := line)) AS pick
  FROM incoming GROUP BY resource_key
), gone AS (
  SELECT resource_key, max(deleted_at) AS deleted_at FROM tombstone_rows
  WHERE source = $source AND resource_type = $type GROUP BY resource_key
)
SELECT CAST($type AS VARCHAR), w.resource_key, w.pick.last_updated, CAST(year(w.pick.last_updated) AS INTEGER),
       w.pick.file_index, w.pick.line, CAST(year(p.last_updated) AS INTEGER), p.resource_key IS NOT NULL
FROM winners AS w
LEFT JOIN present AS p ON p.resource_key = w.resource_key
LEFT JOIN gone AS g ON g.resource_key = w.resource_key
WHERE (p.last_updated IS NULL OR w.pick.last_updated > p.last_updated)
  AND (g.deleted_at IS NULL OR w.pick.last_updated > g.deleted_at)
  AND w.resource_key NOT IN (SELECT resource_key FROM deleted_now WHERE resource_type = $type)
"""

_DELETES = """
INSERT INTO deletes
SELECT CAST($type AS VARCHAR), p.resource_key, CAST(year(p.last_updated) AS INTEGER)
FROM present AS p
WHERE p.resource_key IN (SELECT resource_key FROM deleted_now WHERE resource_type = $type)
  AND (CAST($before AS TIMESTAMPTZ) IS NULL OR p.last_updated <= CAST($before AS TIMESTAMPTZ))
"""

_COUNTS = """
SELECT count(*) FILTER (WHERE NOT existed), count(*) FILTER (WHERE existed),
       (SELECT count(DISTINCT resource_key) FROM staged_rows), (SELECT count(*) FROM deletes WHERE resource_type = $type)
FROM changes WHERE resource_type = $type
"""

PLAN_TABLES = """
CREATE OR REPLACE TABLE changes (resource_type VARCHAR, resource_key VARCHAR, last_updated TIMESTAMPTZ,
  new_year INTEGER, file_index INTEGER, line BIGINT, old_year INTEGER, existed BOOLEAN);
CREATE OR REPLACE TABLE staged_files (file VARCHAR, file_index INTEGER);
CREATE OR REPLACE TABLE deletes (resource_type VARCHAR, resource_key VARCHAR, old_year INTEGER);
"""
STAGED_COLUMNS = {**{k: v for k, v in SILVER_COLUMNS.items() if k != PARTITION}, "filename": "VARCHAR", "file_row_number": "BIGINT"}


@dataclass(frozen=True)
class Staged:
    """The staged files of one type (silver-shaped, in the scratch folder) and their row count."""

    folder: Path
    files: tuple[DataFile, ...]

    @property
    def paths(self) -> list[str]:
        return [str(self.folder / f.path) for f in self.files]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)


@dataclass(frozen=True)
class Plan:
    """What an export changes in one resource type (counts of resources)."""

    resource_type: str
    inserted: int
    updated: int
    unchanged: int
    deleted: int
    staged: Staged

    @property
    def changed(self) -> int:
        return self.inserted + self.updated

    @property
    def touches(self) -> bool:
        return bool(self.changed or self.deleted)

    @property
    def all_staged_rows_changed(self) -> bool:
        """True when every staged row is a new version: the staged files can become silver as they are."""
        return self.changed == self.staged.rows


def stage_type(
    con: duckdb.DuckDBPyConnection, files: Sequence[Path], resource_type: str, *, folder: Path,
    source: str, export_id: str, fallback: datetime,
) -> Staged:
    """Read a type's NDJSON files once into silver-shaped Parquet files under ``folder``."""
    if not files:
        return Staged(folder, ())
    values = {"type": resource_type, "pattern": _PATIENT_REFERENCE, "source": source, "export_id": export_id,
              "fallback": fallback.isoformat(), "files": [str(f) for f in files], "message": _WRONG_LINE}
    for size in (16 * 1024 * 1024, _LARGE_OBJECT_SIZE):
        try:
            reader = con.sql(_STAGE, params={**values, "size": size}).to_arrow_reader(ROWS_PER_GROUP)
            written = write_files(reader, pafs.LocalFileSystem(), str(folder), rows_per_group=ROWS_PER_GROUP)
            return Staged(folder, tuple(written))
        except duckdb.Error as exc:
            if "maximum_object_size" in str(exc) and size != _LARGE_OBJECT_SIZE:
                continue
            raise _diagnose(exc, files, resource_type) from exc
    raise AssertionError("unreachable")


def staged_view(con: duckdb.DuckDBPyConnection, staged: Staged) -> None:
    """The ``staged_rows`` temp view over a type's staged files."""
    files_view(con, "staged_rows", staged.paths, STAGED_COLUMNS, filename=True, file_row_number=True)


def plan_type(
    con: duckdb.DuckDBPyConnection, staged: Staged, resource_type: str, *, source: str, silver: Sequence[str],
    tombstones: Sequence[str], before: datetime | None, first_file: int,
) -> Plan:
    """Add the type's rows to the ``changes`` and ``deletes`` tables; count them.

    The staged files are numbered from ``first_file`` (numbers are unique across the run's types).
    ``con`` may be one cursor among several planning other types at the same time.
    """
    staged_view(con, staged)
    files_view(con, "silver_rows", silver, STORED_COLUMNS)
    files_view(con, "tombstone_rows", tombstones, TOMBSTONE_COLUMNS)
    if staged.paths:
        run(con, _STAGED_FILES, {"files": staged.paths, "first": first_file})
    common = {"type": resource_type, "source": source}
    run(con, _PRESENT, common)
    run(con, _CHANGES, common)
    run(con, _DELETES, {"type": resource_type, "before": before.isoformat() if before else None})
    counted = run(con, _COUNTS, {"type": resource_type})[0]
    inserted, updated, keys, deleted = (int(str(v)) for v in counted)
    return Plan(resource_type, inserted, updated, keys - inserted - updated, deleted, staged)


def register_deleted(con: duckdb.DuckDBPyConnection, deleted: dict[str, frozenset[str]]) -> None:
    """The export's deleted keys as the ``deleted_now`` temp table."""
    rows = [(t, key) for t, keys in sorted(deleted.items()) for key in sorted(keys)]
    table = pa.table({"resource_type": pa.array([r[0] for r in rows], pa.string()),
                      "resource_key": pa.array([r[1] for r in rows], pa.string())})
    con.register("deleted_now_input", table)
    run(con, "CREATE OR REPLACE TABLE deleted_now AS SELECT * FROM deleted_now_input")
    con.unregister("deleted_now_input")


def _diagnose(exc: duckdb.Error, files: Sequence[Path], resource_type: str) -> Exception:
    """After DuckDB failed on a type's files: name the first unusable line, else explain."""
    for path, number, line, problem in scan_lines(files, resource_type):
        reason = problem or _missing_id(line, resource_type)
        if reason is not None:
            return InputDataError(str(path), number, reason)
    return LakeError(f"cannot read the {resource_type} files: {str(exc).splitlines()[0]}")


def _missing_id(line: bytes, resource_type: str) -> str | None:
    if line_problem(line, resource_type) is not None:
        return None
    value = orjson.loads(line)
    return None if isinstance(value.get("id"), str) and value["id"] else "the resource has no id"
