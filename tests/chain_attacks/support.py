"""Helpers of the chain attacks: the CLI in-process, one-line errors, counts, lake fingerprints."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path

from fhirlake.cli import main

DATA_SUFFIXES = (".ndjson", ".ndjson.gz", ".ndjson.zst")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:  # shown by pytest when an assertion fails
        return f"exit {self.code}\n--- stdout ---\n{self.out[-2000:]}\n--- stderr ---\n{self.err[-2000:]}"


def cli(*args: str | Path) -> Result:
    """``fhirlake ARGS`` in-process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # click's usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:  # what the console script would show: a traceback, exit 1
            err.write(traceback.format_exc())
            code = 1
    return Result(int(code or 0), out.getvalue(), err.getvalue())


def error_lines(result: Result) -> list[str]:
    return [line for line in result.err.splitlines() if line.startswith("fhirlake: error:")]


def assert_refused(result: Result, *names: str) -> str:
    """Non-zero exit, exactly one ``fhirlake: error:`` line, no traceback, naming one of NAMES."""
    assert result.code != 0, f"expected a refusal, got:\n{result}"
    lines = error_lines(result)
    assert len(lines) == 1, f"expected one 'fhirlake: error:' line, got:\n{result}"
    assert "Traceback" not in result.err, f"a traceback instead of a one-line reason:\n{result}"
    if names:
        assert any(name in lines[0] for name in names), (
            f"the reason names none of {names}:\n{lines[0]}")
    return lines[0]


def copy_batch(src: Path, dst: Path, *, manifest: bool = True, truth: bool = False) -> Path:
    shutil.copytree(src, dst)
    if not manifest and (dst / "manifest.json").exists():
        (dst / "manifest.json").unlink()
    if not truth and (dst / "truth.json").exists():
        (dst / "truth.json").unlink()
    return dst


def read_lines(path: Path) -> list[str]:
    if path.name.endswith(".gz"):
        text = gzip.decompress(path.read_bytes()).decode()
    elif path.name.endswith(".zst"):
        import zstandard
        text = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes()).decode()
    else:
        text = path.read_text()
    return [line for line in text.splitlines() if line.strip()]


def lines_by_type(folder: Path) -> dict[str, int]:
    """Resources per type in a folder of <Type>.ndjson[.gz|.zst] files (by resourceType)."""
    counts: dict[str, int] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name.endswith(DATA_SUFFIXES):
            for line in read_lines(path):
                kind = json.loads(line)["resourceType"]
                counts[kind] = counts.get(kind, 0) + 1
    return counts


def report(folder: Path) -> dict:
    return json.loads((folder / "privacy-report.json").read_text())


def set_manifest_count(folder: Path, kind: str, count: int) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    for entry in manifest["output"]:
        if entry["type"] == kind:
            entry["count"] = count
    path.write_text(json.dumps(manifest, indent=2))


def lake_fingerprint(lake: Path) -> tuple:
    """What a committed write changes: every Delta log entry and the snapshot log."""
    if not lake.exists():
        return ()
    logs = sorted(str(p.relative_to(lake)) for p in lake.rglob("_delta_log/*.json"))
    snapshots = lake / "_fhirlake" / "snapshots.json"
    return (tuple(logs), snapshots.read_text() if snapshots.exists() else None)


def silver_counts(lake: Path) -> dict[str, int]:
    import fhirlake
    connection = fhirlake.connect(lake)
    tables = connection.sql(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'silver'")
    counts = {}
    for name in tables["table_name"].to_list():
        counts[name] = int(connection.sql(f'SELECT count(*) AS n FROM silver."{name}"')["n"][0])
    return counts


def status_line(lake: Path, source: str) -> str:
    result = cli("lake", "status", "--lake", lake)
    assert result.code == 0, str(result)
    lines = [line for line in result.out.splitlines() if line.strip().startswith(f"source {source}:")]
    assert len(lines) == 1, f"no status line for source {source}:\n{result}"
    return lines[0]
