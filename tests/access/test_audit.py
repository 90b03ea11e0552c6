"""The audit trail: chained entries, tamper detection (line and reason), concurrency, the table, the CLI."""

from __future__ import annotations

import itertools
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest

from fhirlake.audit import (
    AuditKeyError,
    AuditLog,
    AuditTable,
    AuditTamperedError,
    AuditTrail,
    digest,
    head_path,
    verify_log,
)
from fhirlake.cli import main


def call_record(i: int) -> dict[str, Any]:
    return {"event": "call", "client": "onco", "tool": "count_patients", "arguments": {"i": i},
            "sql": "SELECT count(*) FROM gold.patient", "decision": "allowed", "rows": 1, "duration_ms": 1.5}


def write_log(path: Path, n: int, **kwargs: Any) -> AuditLog:
    log = AuditLog(path, fsync=False, **kwargs)
    for i in range(n):
        log.append(call_record(i))
    log.close()
    return log


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_entries_are_chained_from_a_genesis_entry(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    entries = [orjson.loads(line) for line in lines(path)]
    assert [e["seq"] for e in entries] == [0, 1, 2, 3] and entries[0]["event"] == "genesis"
    for previous, entry in itertools.pairwise(entries):
        assert entry["prev"] == previous["hash"] and entry["hash"] == digest(entry)
    check = verify_log(path)
    assert (check.entries, check.last_hash, check.head_checked) == (4, entries[-1]["hash"], True)


def test_reserved_fields_cannot_be_forged_by_the_record(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, fsync=False)
    entry = log.append({"event": "call", "seq": 99, "hash": "x", "prev": "y"})
    assert entry["seq"] == 1 and entry["hash"] == digest(entry)


def _edit(entries: list[bytes]) -> list[bytes]:
    entry = orjson.loads(entries[2])
    entry["client"] = "someone-else"
    entries[2] = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS) + b"\n"
    return entries


def _edit_and_rehash_one(entries: list[bytes]) -> list[bytes]:
    entry = orjson.loads(entries[2])
    entry["decision"] = "denied"
    entry["hash"] = digest(entry)
    entries[2] = orjson.dumps(entry, option=orjson.OPT_SORT_KEYS) + b"\n"
    return entries


TAMPERING = [
    ("an edited entry", _edit, 3, "the entry was edited"),
    ("an edited entry, its own hash recomputed", _edit_and_rehash_one, 4, "prev does not match"),
    ("a removed entry", lambda e: e[:2] + e[3:], 3, "expected seq 2, found 3"),
    ("two entries swapped", lambda e: [e[0], e[2], e[1], *e[3:]], 2, "expected seq 1, found 2"),
    ("the genesis removed", lambda e: e[1:], 1, "not the genesis entry"),
    ("the last entry removed", lambda e: e[:-1], 6, "entries were cut from the end"),
    ("a line cut in half", lambda e: [*e[:-1], e[-1][:40]], 6, "not valid JSON"),
    ("everything emptied", lambda e: [], 1, "the log is empty"),
]


@pytest.mark.parametrize(("case", "tamper", "line", "reason"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampering_is_reported_with_its_line_and_reason(tmp_path: Path, case: str, tamper: Any, line: int, reason: str) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 5)
    verify_log(path)
    path.write_bytes(b"".join(tamper(lines(path))))
    with pytest.raises(AuditTamperedError) as caught:
        verify_log(path)
    assert caught.value.line == line
    assert reason in caught.value.reason


def test_a_head_anchor_from_another_log_is_detected(tmp_path: Path) -> None:
    write_log(tmp_path / "a.jsonl", 2)
    write_log(tmp_path / "b.jsonl", 2)
    head_path(tmp_path / "a.jsonl").write_bytes(head_path(tmp_path / "b.jsonl").read_bytes())
    with pytest.raises(AuditTamperedError, match="belongs to another log"):
        verify_log(tmp_path / "a.jsonl")
    head_path(tmp_path / "a.jsonl").unlink()
    with pytest.raises(AuditTamperedError, match=r"head anchor a\.jsonl\.head is missing"):
        verify_log(tmp_path / "a.jsonl")
    assert verify_log(tmp_path / "a.jsonl", require_head=False).head_checked is False


def test_a_keyed_chain_resists_a_full_rewrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FHIRLAKE_AUDIT_KEY", "k" * 32)
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    verify_log(path)
    # An attacker without the key edits entry 2 and rewrites every later hash with plain SHA-256.
    entries = [orjson.loads(line) for line in lines(path)]
    entries[2]["decision"] = "denied"
    for i in range(2, len(entries)):
        entries[i]["prev"] = entries[i - 1]["hash"]
        entries[i]["hash"] = digest(entries[i])
    path.write_bytes(b"".join(orjson.dumps(e, option=orjson.OPT_SORT_KEYS) + b"\n" for e in entries))
    with pytest.raises(AuditTamperedError) as caught:
        verify_log(path)
    assert caught.value.line == 3
    monkeypatch.delenv("FHIRLAKE_AUDIT_KEY")
    with pytest.raises(AuditKeyError, match="set FHIRLAKE_AUDIT_KEY"):
        verify_log(path)
    with pytest.raises(AuditKeyError, match="started with FHIRLAKE_AUDIT_KEY"):
        AuditLog(path, fsync=False).append(call_record(0))


def _append_from_process(path: str, n: int) -> None:
    write_log(Path(path), n)


def test_concurrent_threads_and_processes_never_break_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path, fsync=False)
    threads = [threading.Thread(target=lambda: [log.append(call_record(i)) for i in range(50)]) for _ in range(8)]
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_append_from_process, args=(str(path), 100)) for _ in range(2)]
    for worker in [*threads, *processes]:
        worker.start()
    for thread in threads:
        thread.join()
    for process in processes:
        process.join()
        assert process.exitcode == 0
    log.close()
    assert verify_log(path).entries == 1 + 8 * 50 + 2 * 100


def test_the_table_mirrors_the_log_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditTrail(AuditLog(path, fsync=False), AuditTable(tmp_path / "audit", path), flush_seconds=0.05) as trail:
        for i in range(5):
            trail.record({**call_record(i), "suppressed_cells": 2, "transport": "http", "peer": "127.0.0.1"})
        trail.flush()
        assert trail.table is not None and trail.table.max_seq() == 5
        for i in range(3):
            trail.record(call_record(i))
    table = AuditTable(tmp_path / "audit", path)
    rows = table.read().sort_by("seq").to_pylist()
    assert [r["seq"] for r in rows] == list(range(9))
    assert rows[1]["arguments"] == '{"i":0}' and rows[1]["suppressed_cells"] == 2
    assert orjson.loads(rows[1]["details"]) == {"peer": "127.0.0.1"}
    assert table.check() == 9
    assert table.sync() == 0  # a fresh reader finds nothing new


def test_the_table_check_catches_a_log_edited_after_the_sync(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    write_log(path, 3)
    table = AuditTable(tmp_path / "audit", path)
    assert table.sync() == 4
    entries = [orjson.loads(line) for line in lines(path)]
    entries[3]["hash"] = "0" * 64
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in entries))
    with pytest.raises(AuditTamperedError, match="another hash"):
        table.check()


def test_audit_verify_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = tmp_path / "lake"
    path = lake / "_fhirlake" / "audit.jsonl"
    with AuditTrail.for_lake(lake, fsync=False) as trail:
        for i in range(4):
            trail.record(call_record(i))
    assert main(["audit", "verify", "--lake", str(lake)]) == 0
    out = capsys.readouterr().out
    assert "5 entries" in out and "audit table: 5 rows match" in out
    path.write_bytes(b"".join(_edit(lines(path))))
    assert main(["audit", "verify", "--lake", str(lake)]) == 1
    err = capsys.readouterr().err
    assert "TAMPERED" in err and "audit.jsonl:3: hash does not match" in err
    assert main(["audit", "verify", "--log", str(tmp_path / "none.jsonl")]) == 2
    assert "no such audit log" in capsys.readouterr().err
