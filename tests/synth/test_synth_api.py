"""The public API of fhirlake.synth."""

from __future__ import annotations

import fhirlake.synth as synth


def test_public_names() -> None:
    assert sorted(synth.__all__) == [
        "DEFAULT_AS_OF", "DEFAULT_HISTORY_YEARS", "LOCALES", "OutputDirectoryError", "RunReport", "SynthError",
        "SynthOptionError", "generate", "iter_resources", "make_options",
    ]
    assert issubclass(synth.SynthOptionError, synth.SynthError)


def test_iter_resources_yields_what_generate_writes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import orjson

    report = synth.generate(tmp_path, patients=7, seed=21, locale="fr", workers=1)
    in_memory = list(synth.iter_resources(patients=7, seed=21, locale="fr"))
    on_disk = [orjson.loads(line) for path in report.files.values() for line in path.read_bytes().splitlines()]
    key = lambda r: (r["resourceType"], r["id"])  # noqa: E731
    assert sorted(in_memory, key=key) == sorted(on_disk, key=key)


def test_as_of_moves_today(tmp_path) -> None:  # type: ignore[no-untyped-def]
    resources = list(synth.iter_resources(patients=5, seed=2, as_of="2020-01-01"))
    assert max(r["meta"]["lastUpdated"] for r in resources) < "2020-01-02"
