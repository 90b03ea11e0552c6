"""Fixtures for the pseudonymisation tests: a throwaway key, the default policy, Presidio.

The key is made at run time (never stored); Presidio and its spaCy models are loaded once per
session, since loading them takes seconds. Tests never print a patient's string: use
:func:`assert_absent` and :func:`assert_present`, which name a hash and a position instead.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from pathlib import Path
from typing import Any

import orjson
import pytest

from fhirlake.pseudonymize.fhirtypes import load_registry
from fhirlake.pseudonymize.keys import KEY_ENV_VAR, PseudonymKey
from fhirlake.pseudonymize.patients import PatientDirectory
from fhirlake.pseudonymize.policy import DEFAULT_POLICY_PATH, Policy, load_policy
from fhirlake.pseudonymize.rules import StructuredRules
from fhirlake.pseudonymize.text import TextScrubber, load_models
from tests.conftest import shared_path

TODAY = dt.date(2025, 6, 30)


def digest(text: str) -> str:
    """What a test may print about a patient's string."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def assert_absent(needle: str, haystack: str, where: str = "") -> None:
    """Fail (naming a hash and position, never the string) if ``needle`` is in ``haystack``."""
    position = haystack.casefold().find(needle.casefold())
    if position >= 0:
        pytest.fail(
            f"a patient string (sha256 {digest(needle)}) is still in {where} at {position}",
            pytrace=False,
        )


def assert_present(needle: str, haystack: str, where: str = "") -> None:
    """Fail (naming a hash, never the string) if ``needle`` is not in ``haystack``."""
    if needle.casefold() not in haystack.casefold():
        pytest.fail(f"expected string (sha256 {digest(needle)}) is not in {where}", pytrace=False)


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def write_ndjson(path: Path, resources: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))
    return path


@pytest.fixture(scope="session")
def key() -> PseudonymKey:
    return PseudonymKey(secrets.token_hex(32).encode())


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """A throwaway key in FHIRLAKE_PSEUDONYM_KEY, for CLI tests."""
    secret = secrets.token_hex(32)
    monkeypatch.setenv(KEY_ENV_VAR, secret)
    return secret


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(DEFAULT_POLICY_PATH)


@pytest.fixture(scope="session")
def structured_policy(policy: Policy) -> Policy:
    return policy.without_text()


def make_rules(
    policy: Policy, key: PseudonymKey, patients: list[dict[str, Any]] | None = None
) -> StructuredRules:
    directory = PatientDirectory()
    for patient in patients or []:
        directory.add(patient)
    return StructuredRules(policy, key, load_registry(), directory, TODAY)


@pytest.fixture(scope="session")
def scrubber(policy: Policy, key: PseudonymKey) -> TextScrubber:
    """The real spaCy models (EN + FR, NER only), loaded once per session."""
    return TextScrubber(policy.text, key, load_models(policy.text), policy.max_age)


@pytest.fixture(scope="session")
def canary_bundle() -> Path:
    return shared_path("data", "pii-canary", "synthea-Carolee951.json")
