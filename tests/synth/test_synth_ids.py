"""Ids are valid version-4 UUIDs drawn from per-item streams."""

from __future__ import annotations

import random
import uuid

from fhirlake.synth.ids import derive_seed, stream, uuid_from_int, uuid_from_rng


def test_uuids_are_version_4_rfc_4122() -> None:
    rng = random.Random(9)
    for _ in range(500):
        parsed = uuid.UUID(uuid_from_rng(rng))
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert uuid.UUID(uuid_from_int(2**130 - 1)).version == 4


def test_streams_depend_on_seed_kind_and_index_only() -> None:
    assert uuid_from_rng(stream(1, "patient", 7)) == uuid_from_rng(stream(1, "patient", 7))
    seeds = {derive_seed(s, k, i) for s in (1, 2) for k in ("patient", "organization") for i in (0, 1)}
    assert len(seeds) == 8
