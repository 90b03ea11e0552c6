"""The leak scan of a lake: every string column of every silver and gold table.

Pseudonymised output is checked before it lands; the lake is checked after, because what
reaches researchers is the lake (a view can put together what no file held, and a lake built
before a policy was fixed still holds what the old policy let through). Each row is one unit
of text: its string values, scanned by the same :class:`~fhirlake.pseudonymize.scan.Scanner`
as output files. A row's patient is read from its ``patient_key`` (silver) or ``patient_id``
(gold) column, which with the key finds the input patient, so birth dates and date-offset
leaks are checked per patient as in the output.

Leaks are named ``silver/<Type>`` or ``gold/<view>`` with the row's position in the table.
"""

from __future__ import annotations

from pathlib import Path

from fhirlake.pseudonymize.errors import PseudonymizeError
from fhirlake.pseudonymize.keys import PseudonymKey
from fhirlake.pseudonymize.scan import Leak, ScanContext, Scanner, ScanResult, with_attachments

__all__ = ["scan_lake"]

_PATIENT_COLUMNS = ("patient_key", "patient_id")
_BATCH_ROWS = 8192


def _tables(root: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    for layer in ("silver", "gold"):
        folder = root / layer
        if folder.is_dir():
            found.extend(
                (f"{layer}/{p.name}", p)
                for p in sorted(folder.iterdir())
                if (p / "_delta_log").is_dir()
            )
    return found


def scan_lake(root: Path, context: ScanContext, *, key: PseudonymKey | None = None) -> ScanResult:
    """Scan every string column of the lake at ``root`` (a local folder) for ``context``."""
    import pyarrow as pa
    from deltalake import DeltaTable

    tables = _tables(root)
    if not tables:
        raise PseudonymizeError(f"{root}: no silver or gold Delta tables (is it a lake root?)")
    scanner = Scanner(context.terms, context, key, context.patient_ids)
    result = ScanResult(
        terms=len(context.terms),
        patients=len(context.patient_ids),
        own_patient_checked=bool(scanner.owners),
    )
    for name, path in tables:
        result.tables += 1
        try:
            dataset = DeltaTable(str(path)).to_pyarrow_dataset()
        except Exception as exc:  # deltalake raises its own and OS errors alike
            raise PseudonymizeError(f"{path}: cannot read the Delta table ({exc})") from None
        columns = [
            f.name
            for f in dataset.schema
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        ]
        if not columns:
            continue
        owner_column = next((c for c in _PATIENT_COLUMNS if c in columns), None)
        row = 0
        for batch in dataset.to_batches(columns=columns, batch_size=_BATCH_ROWS):
            values = [batch.column(c).to_pylist() for c in columns]
            owners = batch.column(owner_column).to_pylist() if owner_column else None
            for i in range(batch.num_rows):
                row += 1
                texts = [t for v in values if v[i] for t in with_attachments(v[i])]
                owner = scanner.owners.get(owners[i] or "") if owners is not None else None
                found = scanner.scan(texts, owner, json_line="\n".join(texts))
                result.leaks.extend(Leak(name, row, e, o, d, r) for e, o, d, r in sorted(found))
        result.lines += row
    return result
