"""Small hand-built exports for the lake tests: a full export, an incremental one, the final state."""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from tests.conftest import PROJECT_ROOT

Resource = dict[str, Any]
TEST_VIEWS = ("encounter", "observation", "patient")


def views_folder(target: Path, names: Iterable[str] = TEST_VIEWS) -> Path:
    """A folder with some views of the library (fewer tables: faster tests)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(PROJECT_ROOT / "sql_on_fhir_views" / f"{name}.json", target / f"{name}.json")
    return target


def patient(pid: str, updated: str, *, gender: str = "female", birth: str = "1980-05-01", died: str | None = None) -> Resource:
    resource: Resource = {"resourceType": "Patient", "id": pid, "meta": {"lastUpdated": updated}, "gender": gender,
                          "birthDate": birth, "address": [{"state": "CA", "country": "US"}]}
    if died:
        resource["deceasedDateTime"] = died
    return resource


def encounter(eid: str, pid: str, updated: str, start: str, end: str | None) -> Resource:
    period = {"start": start} | ({"end": end} if end else {})
    return {"resourceType": "Encounter", "id": eid, "meta": {"lastUpdated": updated},
            "status": "finished" if end else "in-progress", "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/{pid}"}, "period": period}


def observation(oid: str, pid: str, updated: str, value: float, *, eid: str | None = None) -> Resource:
    resource: Resource = {
        "resourceType": "Observation", "id": oid, "meta": {"lastUpdated": updated}, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": updated[:10],
        "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    }
    if eid:
        resource["encounter"] = {"reference": f"Encounter/{eid}"}
    return resource


def full_export() -> list[Resource]:
    """Six patients with encounters and observations whose lastUpdated spans 2019-2025."""
    resources: list[Resource] = []
    for p in range(6):
        pid = f"p{p}"
        resources.append(patient(pid, f"202{p % 6}-03-0{p + 1}T10:00:00Z", gender="male" if p % 2 else "female",
                                 birth=f"19{50 + p * 7}-0{p + 1}-15", died="2024-01-10" if p == 5 else None))
        for e in range(3):
            eid, year = f"e{p}{e}", 2019 + (p + e) % 7
            resources.append(encounter(eid, pid, f"{year}-06-1{e}T08:00:00Z", f"{year}-06-1{e}T08:00:00Z", f"{year}-06-1{e}T20:00:00Z"))
            for o in range(2):
                resources.append(observation(f"o{p}{e}{o}", pid, f"{year}-06-1{e}T09:0{o}:00Z", 60.0 + p + e + o, eid=eid))
    return resources


UPDATED = {"p1", "e12", "o120", "o000", "e50"}
DELETED = ("Observation/o011", "Encounter/e31", "Patient/p4")


def incremental_export(full: list[Resource]) -> list[Resource]:
    """Newer versions of some resources, unchanged copies of others, and new resources."""
    out: list[Resource] = []
    for resource in full:
        if resource["id"] in UPDATED:
            newer = orjson.loads(orjson.dumps(resource))
            newer["meta"]["lastUpdated"] = "2025-07-01T12:00:00Z"
            if newer["resourceType"] == "Observation":
                newer["valueQuantity"]["value"] = 99.5
            elif newer["resourceType"] == "Encounter":
                newer["period"]["end"] = newer["period"]["start"][:8] + "28T08:00:00Z"
            else:
                newer["maritalStatus"] = {"coding": [{"code": "M"}]}
            out.append(newer)
        elif resource["id"] in {"o200", "e20"}:
            out.append(resource)  # unchanged, sent again
    out.append(patient("p9", "2025-07-01T11:00:00Z", gender="other", birth="2001"))
    out.append(encounter("e90", "p9", "2025-07-01T11:30:00Z", "2025-06-30T22:00:00Z", None))
    out.append(observation("o900", "p9", "2025-07-01T11:31:00Z", 71.0, eid="e90"))
    return out


def final_state(full: list[Resource], incremental: list[Resource], deleted: Iterable[str] = DELETED) -> list[Resource]:
    """What the source holds after the incremental export: the newest version, deletions applied."""
    state = {(r["resourceType"], r["id"]): r for r in full}
    for resource in incremental:
        state[(resource["resourceType"], resource["id"])] = resource
    for reference in deleted:
        resource_type, key = reference.split("/")
        state.pop((resource_type, key), None)
    return list(state.values())


def write_export(folder: Path, resources: Iterable[Resource], *, transaction_time: str,
                 deleted: Iterable[str] = ()) -> Path:
    """A Bulk Data export folder: ``<Type>.ndjson`` files, a manifest, deletions as a Bundle."""
    folder.mkdir(parents=True, exist_ok=True)
    by_type: dict[str, list[Resource]] = defaultdict(list)
    for resource in resources:
        by_type[resource["resourceType"]].append(resource)
    for resource_type, items in by_type.items():
        (folder / f"{resource_type}.ndjson").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in items))
    manifest: dict[str, Any] = {
        "transactionTime": transaction_time, "request": "$export", "requiresAccessToken": False,
        "output": [{"type": t, "url": f"{t}.ndjson", "count": len(v)} for t, v in sorted(by_type.items())],
        "deleted": [], "error": [],
    }
    references = list(deleted)
    if references:
        bundle = {"resourceType": "Bundle", "type": "transaction",
                  "entry": [{"request": {"method": "DELETE", "url": r}} for r in references]}
        (folder / "deleted.ndjson").write_bytes(orjson.dumps(bundle) + b"\n")
        manifest["deleted"] = [{"type": "Bundle", "url": "deleted.ndjson"}]
    (folder / "manifest.json").write_bytes(orjson.dumps(manifest))
    return folder


def table_rows(lake: Any, name: str, *, drop: Iterable[str] = ()) -> pl.DataFrame:
    """A table's rows in a stable order, for comparing lakes."""
    frame = lake.sql(f"SELECT * FROM {name}").drop(list(drop))
    return frame.sort(frame.columns, nulls_last=True)


def tables_of(lake: Any) -> Mapping[str, int]:
    """name -> rows of every table of a lake's catalog."""
    return dict(lake.tables().select("name", "rows").iter_rows())
