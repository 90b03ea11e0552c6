"""Incremental merge: an export's changes and deletions, replays, and snapshots (as_of)."""

from __future__ import annotations

from pathlib import Path

import pytest

import fhirlake
from fhirlake.lake import Lake, TypeCounts, connect
from tests.lake import helpers
from tests.lake.conftest import Exports


def _lake(root: Path, views: Path, *folders: Path) -> Lake:
    lake = connect(root, read_only=False, views=views)
    for folder in folders:
        lake.ingest(folder, source="hospital-a", allow_raw=True)
    return lake


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory, exports: Exports, views: Path) -> Lake:
    """A lake built by the full export then the incremental one."""
    return _lake(tmp_path_factory.mktemp("merged"), views, exports.full, exports.incremental)


def test_incremental_gives_the_tables_of_a_rebuild_from_the_final_state(
    merged: Lake, exports: Exports, views: Path, tmp_path: Path
) -> None:
    rebuilt = _lake(tmp_path / "rebuilt", views, exports.final)
    assert helpers.tables_of(merged) == helpers.tables_of(rebuilt)
    for name in helpers.tables_of(merged):
        drop = ["export_id"] if name.startswith("silver.") else []
        assert helpers.table_rows(merged, name, drop=drop).equals(helpers.table_rows(rebuilt, name, drop=drop)), name


def test_the_report_counts_what_changed(exports: Exports, views: Path, tmp_path: Path) -> None:
    lake = _lake(tmp_path, views, exports.full)
    report = lake.ingest(exports.incremental, source="hospital-a", allow_raw=True)
    assert report.types["Observation"] == TypeCounts(inserted=1, updated=2, unchanged=1, deleted=1)
    assert report.types["Encounter"] == TypeCounts(inserted=1, updated=2, unchanged=1, deleted=1)
    assert report.types["Patient"] == TypeCounts(inserted=1, updated=1, unchanged=0, deleted=1)
    assert report.gold["observation"].rows_added == 3
    assert report.gold["observation"].rows_removed == 3  # two old versions and one deleted
    assert report.snapshot_id == 2 and not report.already_ingested


def test_updates_and_deletes_reach_gold(merged: Lake) -> None:
    values = dict(merged.sql("SELECT observation_id, value_quantity FROM gold.observation").iter_rows())
    assert values["o120"] == 99.5 and values["o000"] == 99.5
    assert "o011" not in values and "o900" in values
    patients = set(merged.sql("SELECT patient_id FROM gold.patient")["patient_id"])
    assert "p4" not in patients and "p9" in patients
    assert merged.sql("SELECT count(*) AS n FROM gold.encounter WHERE encounter_id = 'e31'")["n"][0] == 0


def test_replaying_an_export_changes_nothing(exports: Exports, views: Path, tmp_path: Path) -> None:
    lake = _lake(tmp_path, views, exports.full, exports.incremental)
    before = lake.tables()
    again = lake.ingest(exports.incremental, source="hospital-a", allow_raw=True)
    assert again.already_ingested and again.snapshot_id == 2
    renamed = lake.ingest(exports.incremental, source="hospital-a", export_id="inc-again", allow_raw=True)
    older = lake.ingest(exports.full, source="hospital-a", export_id="full-again", allow_raw=True)
    assert not renamed.changed and not older.changed
    after = lake.tables()
    assert after.select("name", "version", "rows").equals(before.select("name", "version", "rows"))
    assert "p4" not in set(lake.sql("SELECT patient_id FROM gold.patient")["patient_id"])  # not resurrected


def test_as_of_opens_the_lake_as_it_was(merged: Lake) -> None:
    root = merged.storage.root
    first = fhirlake.connect(root, as_of=1)
    assert first.snapshot is not None and first.snapshot.export_id == "full"
    old = dict(first.sql("SELECT observation_id, value_quantity FROM gold.observation").iter_rows())
    assert old["o120"] == 63.0 and "o011" in old and "o900" not in old
    by_export = fhirlake.connect(root, as_of="inc")
    assert by_export.snapshot is not None and by_export.snapshot.id == 2
    by_time = fhirlake.connect(root, as_of=first.snapshot.time.isoformat())
    assert by_time.snapshot is not None and by_time.snapshot.id == 1
    assert first.sql("SELECT count(*) AS n FROM silver.Patient")["n"][0] == 6


def test_as_of_unknown_is_a_clear_error(merged: Lake) -> None:
    with pytest.raises(fhirlake.lake.SnapshotNotFoundError, match="no snapshot 9"):
        fhirlake.connect(merged.storage.root, as_of=9)
    with pytest.raises(fhirlake.lake.SnapshotNotFoundError, match="before 2001"):
        fhirlake.connect(merged.storage.root, as_of="2001-01-01")


def test_a_resource_without_lastupdated_takes_the_transaction_time(views: Path, tmp_path: Path) -> None:
    resource = helpers.patient("px", "2020-01-01T00:00:00Z")
    del resource["meta"]
    folder = helpers.write_export(tmp_path / "e", [resource], transaction_time="2024-02-03T04:05:06Z")
    lake = _lake(tmp_path / "lake", views, folder)
    stamp = lake.sql("SELECT CAST(last_updated AS VARCHAR) AS t FROM silver.Patient")["t"][0]
    assert stamp.startswith("2024-02-03 04:05:06")


def test_sources_are_merged_separately(exports: Exports, views: Path, tmp_path: Path) -> None:
    lake = _lake(tmp_path / "lake", views, exports.full)
    lake.ingest(exports.full, source="hospital-b", export_id="full-b", allow_raw=True)
    assert lake.sql("SELECT count(*) AS n FROM gold.patient")["n"][0] == 12
    only_deleted = tmp_path / "deletions"
    only_deleted.mkdir()
    report = lake.ingest(only_deleted, source="hospital-b", deleted=["Patient/p0", "Observation/o000"], allow_raw=True)
    assert report.types["Patient"].deleted == 1 and report.gold["observation"].rows_removed == 1
    rows = lake.sql("SELECT _source, count(*) AS n FROM gold.patient WHERE patient_id = 'p0' GROUP BY ALL")
    assert rows.rows() == [("hospital-a", 1)]
    assert lake.sql("SELECT count(*) AS n FROM gold.observation WHERE observation_id = 'o000'")["n"][0] == 1


def test_an_open_reader_keeps_its_snapshot_and_a_new_one_sees_the_ingest(exports: Exports, views: Path, tmp_path: Path) -> None:
    writer = _lake(tmp_path / "lake", views, exports.full)
    reader = fhirlake.connect(tmp_path / "lake")
    writer.ingest(exports.incremental, source="hospital-a", allow_raw=True)
    assert writer.snapshot is not None and writer.snapshot.id == 2
    assert reader.snapshot is not None and reader.snapshot.id == 1
    assert "p4" in set(reader.sql("SELECT patient_id FROM gold.patient")["patient_id"])
    fresh = fhirlake.connect(tmp_path / "lake")
    assert fresh.snapshot is not None and fresh.snapshot.id == 2
    assert "p4" not in set(fresh.sql("SELECT patient_id FROM gold.patient")["patient_id"])
