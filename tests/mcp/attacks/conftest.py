"""Fixtures of the attack battery (issue #16): servers, synchronous MCP sessions, the lake's keys, column roles.

These tests are written from the issue's words and the public interface only (tools and answers,
the aggregate grammar, the privacy fields, the deployment rules), never from the implementation.
Every server under test gets its own state directory (budget ledger and release cache) under
``tmp_path``; the shared ``demo_lake`` is never written (tests that start servers which write an
audit trail copy it first).

Conventions the whole folder relies on (the strict reading of the interface, see the README of
the interface in the issue):

* a refusal is an MCP tool error (``is_error``) whose text is one line and says ``refused``
  (the server's existing convention, ``refused: <rule> ...``); a budget refusal contains ``budget``;
* an answer is a tool result with ``structured_content``, which has a ``privacy`` object
  (``epsilon``, ``epsilon_left``, ``period``, ``cached``, ``noise``);
* a count object is ``{"count": int|None, "shown": str, "suppressed": bool}``; a shown count is
  never under k (11); a hidden one shows ``"suppressed"`` or ``"<N"`` with N >= k (docs/mcp.md: the
  display threshold is k, raised where a cell's key comes from the data);
* column roles are declared in ``sql_on_fhir_views/*.json`` as column tags ``fhirlake/role`` and
  ``fhirlake/bounds``; derived columns (``age``, ``length_of_stay_days``, ``_source``) take the role
  ``describe_view`` shows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from fhirlake.lake import Lake
from mcp import Client, StdioServerParameters

PROJECT = Path(__file__).resolve().parents[3]
VIEWS_DIR = PROJECT / "sql_on_fhir_views"
K = 11
EPS_CALL = 1.0
EPS_DAY = 20.0
NOISE_BOUND = 12.0  # |released - true| > 12 x scale has probability about exp(-12) per release
KEY_COLUMN = re.compile(r"^(patient_id|.*_ids?|__fl_.*)$", re.IGNORECASE)
TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{5,}")


# ---------------------------------------------------------------------------------------- replies


@dataclass
class Reply:
    """One tool call's outcome, as the MCP SDK client received it."""

    tool: str
    arguments: dict[str, Any]
    is_error: bool
    text: str
    data: dict[str, Any] | None
    seconds: float

    @property
    def privacy(self) -> dict[str, Any]:
        assert self.data is not None, f"{self.tool} was not answered: {self.text}"
        assert isinstance(self.data.get("privacy"), dict), f"{self.tool}: the answer has no privacy object: {self.data}"
        return self.data["privacy"]

    def describe(self) -> str:
        shown = self.text if self.is_error else json.dumps(self.data)[:600]
        return f"{self.tool}({json.dumps(self.arguments)[:300]}) -> {'ERROR ' if self.is_error else ''}{shown}"


def assert_refused(reply: Reply, *, word: str = "refused", max_seconds: float = 5.0) -> str:
    """The call was refused with a one-line reason naming the refusal, quickly, and nothing was answered."""
    assert reply.is_error, f"answered, should have been refused: {reply.describe()}"
    text = reply.text.strip()
    assert text, f"refused without a reason: {reply.describe()}"
    assert "\n" not in text, f"the reason is not one line: {text!r}"
    assert len(text) <= 1000, f"the reason is not a short line ({len(text)} characters): {text[:300]!r}"
    assert word.lower() in text.lower(), f"the reason does not say {word!r}: {text!r}"
    assert not (reply.data and reply.data.get("rows")), f"a refusal carried rows: {reply.data}"
    assert "Traceback" not in text and "RecursionError" not in text, text
    assert reply.seconds <= max_seconds, f"the refusal took {reply.seconds:.1f} s: {reply.describe()}"
    return text


def assert_answered(reply: Reply) -> dict[str, Any]:
    assert not reply.is_error, f"refused, should have been answered: {reply.describe()}"
    assert reply.data is not None, f"answered without structured content: {reply.text}"
    return reply.data


def is_budget_refusal(reply: Reply) -> bool:
    return reply.is_error and "budget" in reply.text.lower()


# ---------------------------------------------------------------------------------------- values in answers


def count_of(value: Any) -> float | None:
    """The number a released cell or count object carries, or None when it is hidden."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        for name in ("count", "value", "estimate"):
            if name in value:
                return count_of(value[name])
        return None
    if isinstance(value, str):
        try:
            return float(value.replace(",", ""))
        except ValueError:
            return None
    return None


def column_index(answer: dict[str, Any], name: str | int) -> int:
    if isinstance(name, int):
        return name
    columns = [str(c).lower() for c in answer["columns"]]
    assert name.lower() in columns, f"no column {name!r} in {answer['columns']}"
    return columns.index(name.lower())


def sql_rows(answer: dict[str, Any]) -> list[list[Any]]:
    """Rows as lists (rows given as objects keyed by column become lists in column order)."""
    rows = []
    for row in answer.get("rows") or []:
        rows.append([row.get(c) for c in answer["columns"]] if isinstance(row, dict) else list(row))
    return rows


def sql_cell(answer: dict[str, Any], column: str | int = 0, row: int = 0) -> float | None:
    rows = sql_rows(answer)
    if len(rows) <= row:
        return None
    return count_of(rows[row][column_index(answer, column)])


def sql_by_key(answer: dict[str, Any], key_columns: int, value: str | int) -> dict[tuple[str, ...], float | None]:
    """A grouped answer as {(dimension values...): released value of column `value`}."""
    index = column_index(answer, value)
    return {tuple(str(v) for v in row[:key_columns]): count_of(row[index]) for row in sql_rows(answer)}


def noise_scale(reply: Reply, statistic: str | None = None) -> float:
    """The noise scale of one statistic of the answer (the largest when it is not named)."""
    noise = reply.privacy.get("noise") or []
    assert noise, f"an answer without noise: {reply.describe()}"
    if statistic is not None:
        named = [n for n in noise if statistic.lower() in str(n.get("statistic", "")).lower()]
        if named:
            noise = named
    scales = [float(n["scale"]) for n in noise]
    assert all(s > 0 for s in scales), f"a released statistic without noise: {noise}"
    return max(scales)


def walk_values(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from walk_values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from walk_values(item)
    else:
        yield value


def leaked_keys(reply: Reply, keys: frozenset[str]) -> set[str]:
    """Patient and resource keys of the lake found anywhere in a reply (values, or tokens inside text).

    A key the caller put in its own arguments (a refusal may quote the offending fragment) is not a leak.
    """
    found = _keys_in(reply, keys)
    return found - _keys_in(Reply(reply.tool, {}, False, json.dumps(reply.arguments), None, 0.0), keys)


def _keys_in(reply: Reply, keys: frozenset[str]) -> set[str]:
    found: set[str] = set()
    texts = [reply.text]
    for value in walk_values(reply.data):
        text = str(value)
        if text in keys:
            found.add(text)
        texts.append(text)
    for text in texts:
        for token in TOKEN.findall(text):
            for part in {token, token.strip("./:-"), *re.split(r"[/:]", token)}:
                if part in keys:
                    found.add(part)
    return found


def count_objects(data: Any) -> Iterator[dict[str, Any]]:
    """Every count object ({"count", "shown", "suppressed"}) in an answer."""
    if isinstance(data, dict):
        if {"count", "shown", "suppressed"} <= set(data):
            yield data
        for item in data.values():
            yield from count_objects(item)
    elif isinstance(data, list):
        for item in data:
            yield from count_objects(item)


def assert_safe_answer(reply: Reply, keys: frozenset[str], k: int = K) -> None:
    """Nothing row-level: no key, every shown count a whole number >= k, hidden ones null, a privacy object."""
    assert not leaked_keys(reply, keys), f"keys of the lake in an answer: {leaked_keys(reply, keys)}: {reply.describe()}"
    if reply.is_error:
        return
    for counted in count_objects(reply.data):
        value = counted["count"]
        if value is None:
            # "<N": N is k, or higher where the noise is wide (the display threshold, documented in docs/mcp.md)
            shown = str(counted["shown"])
            assert counted["suppressed"] is True, counted
            assert shown == "suppressed" or (shown.startswith("<") and int(shown[1:]) >= k), counted
        else:
            assert isinstance(value, int) and not isinstance(value, bool), f"a count that is not a whole number: {counted}"
            assert value >= k, f"a count under k shown: {counted} in {reply.describe()}"
            assert counted["suppressed"] is False, counted
    privacy = reply.privacy
    assert set(privacy) >= {"epsilon", "epsilon_left", "period", "cached", "noise"}, privacy
    assert float(privacy["epsilon"]) >= 0 and float(privacy["epsilon_left"]) >= -1e-9, privacy
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(privacy["period"])), privacy
    if privacy["cached"]:
        assert float(privacy["epsilon"]) == 0.0, privacy
    for entry in privacy["noise"]:
        assert set(entry) >= {"statistic", "epsilon", "scale"}, entry


# ---------------------------------------------------------------------------------------- sessions


class Session:
    """One MCP SDK client session, driven synchronously through a blocking portal."""

    def __init__(self, portal: BlockingPortal, target: Any, label: str) -> None:
        self.portal = portal
        self.label = label
        self._context: AbstractContextManager[Client] = portal.wrap_async_context_manager(Client(target, cache=None))
        self.client = self._context.__enter__()
        self.closed = False

    async def _call(self, tool: str, arguments: dict[str, Any], timeout: float) -> Reply:
        started = time.monotonic()
        result = await self.client.call_tool(tool, arguments, read_timeout_seconds=timeout)
        seconds = time.monotonic() - started
        text = "\n".join(getattr(c, "text", "") for c in result.content or [])
        data = result.structured_content if not result.is_error else None
        return Reply(tool, arguments, bool(result.is_error), text, data, seconds)

    def call(self, tool: str, arguments: dict[str, Any] | None = None, timeout: float = 120.0) -> Reply:
        return self.portal.call(self._call, tool, arguments or {}, timeout)

    def submit(self, tool: str, arguments: dict[str, Any] | None = None, timeout: float = 120.0) -> Future[Reply]:
        """Start a call and return at once (for concurrent calls)."""
        return self.portal.start_task_soon(self._call, tool, arguments or {}, timeout)

    def sql(self, query: str, timeout: float = 120.0) -> Reply:
        return self.call("run_aggregate_sql", {"sql": query}, timeout)

    def count(self, criteria: dict[str, Any], **extra: Any) -> Reply:
        return self.call("count_cohort", {"cohort": {"criteria": criteria, **extra}})

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._context.__exit__(None, None, None)


class Harness:
    """One event loop (a blocking portal) for the sessions of a test, so in-process servers see one loop."""

    def __init__(self) -> None:
        self._portal_context = start_blocking_portal()
        self.portal = self._portal_context.__enter__()
        self.sessions: list[Session] = []

    def connect(self, target: Any, label: str = "") -> Session:
        session = Session(self.portal, target, label)
        self.sessions.append(session)
        return session

    def close(self) -> None:
        errors = []
        for session in reversed(self.sessions):
            try:
                session.close()
            except Exception as exc:
                errors.append(exc)
        self._portal_context.__exit__(None, None, None)
        if errors:
            raise errors[0]


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


# ---------------------------------------------------------------------------------------- servers


@dataclass
class Servers:
    """Builds in-process servers over a lake; servers given the same state name share budget and cache."""

    lake: Path
    root: Path
    readers: list[Any] = field(default_factory=list)
    services: list[Any] = field(default_factory=list)

    def state(self, name: str = "state") -> Path:
        return self.root / name

    def new(self, state: str = "state", *, epsilon_per_call: float = EPS_CALL, epsilon_per_day: float = EPS_DAY) -> Any:
        """A FhirlakeServer (``.mcp`` is the MCPServer): ``CohortService(GoldReader, privacy=..., state_dir=...)``."""
        from fhirlake.mcp_server import build_server
        from fhirlake.serving import CohortService, GoldReader, PrivacyPolicy

        reader = GoldReader(self.lake)
        self.readers.append(reader)
        service = CohortService(reader, privacy=PrivacyPolicy(epsilon_per_call=epsilon_per_call, epsilon_per_day=epsilon_per_day),
                                state_dir=self.state(state))
        self.services.append(service)
        return build_server(service)

    def close(self) -> None:
        for service in self.services:
            close = getattr(service, "close", None)
            if callable(close):
                close()
        for reader in self.readers:
            reader.close()


@pytest.fixture
def servers(demo_lake: Path, tmp_path: Path) -> Iterator[Servers]:
    built = Servers(demo_lake, tmp_path)
    yield built
    built.close()


def server_env() -> dict[str, str]:
    """The environment of a ``fhirlake mcp`` child: this one, without policy/audit/lake overrides."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"FHIRLAKE_ACCESS_POLICY", "FHIRLAKE_AUDIT_LOG", "FHIRLAKE_LAKE", "FHIRLAKE_AUDIT_KEY"}}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def stdio_server(lake: Path, state: Path, *extra: str, epsilon_per_call: float = EPS_CALL,
                 epsilon_per_day: float = EPS_DAY) -> StdioServerParameters:
    """``fhirlake mcp --lake LAKE --state STATE --epsilon-per-call E --epsilon-per-day D`` over stdio."""
    args = ["-m", "fhirlake", "mcp", "--lake", str(lake), "--state", str(state),
            "--epsilon-per-call", str(epsilon_per_call), "--epsilon-per-day", str(epsilon_per_day), *extra]
    return StdioServerParameters(command=sys.executable, args=args, env=server_env())


def _written_state(lake: Path) -> set[str]:
    """Audit trails and serving state under a lake (what a server must never write into the shared demo lake)."""
    found = set()
    for path in lake.rglob("*"):
        relative = path.relative_to(lake).as_posix()
        if relative.startswith(("gold/", "silver/")):
            continue
        if "audit" in relative or "serving" in relative or relative.startswith("state"):
            found.add(relative)
    return found


@pytest.fixture(autouse=True)
def _the_demo_lake_stays_unwritten(demo_lake: Path) -> Iterator[None]:
    before = _written_state(demo_lake)
    yield
    written = _written_state(demo_lake) - before
    assert not written, f"a server under test wrote into the shared demo lake: {sorted(written)[:5]}"


@pytest.fixture
def lake_copy(demo_lake: Path, tmp_path: Path) -> Path:
    """A private copy of the demo lake, for servers that write (audit trail)."""
    target = tmp_path / "lake-copy"
    shutil.copytree(demo_lake, target, symlinks=True)
    return target


# ---------------------------------------------------------------------------------------- the lake's truth


def truth_value(truth: Lake, query: str) -> Any:
    return truth.sql(query).item()


@pytest.fixture(scope="session")
def gold_columns(truth: Lake) -> dict[str, dict[str, str]]:
    """{view: {column: DuckDB type}} of the gold tables, read with trusted exact SQL."""
    rows = truth.sql("SELECT table_name, column_name, data_type FROM information_schema.columns "
                     "WHERE table_schema = 'gold' ORDER BY table_name, ordinal_position").rows()
    columns: dict[str, dict[str, str]] = {}
    for table, column, kind in rows:
        columns.setdefault(str(table), {})[str(column)] = str(kind)
    return columns


@pytest.fixture(scope="session")
def lake_keys(truth: Lake, gold_columns: dict[str, dict[str, str]]) -> frozenset[str]:
    """Every patient and resource key of the demo lake (patient_id and every *_id / *_ids column of every view)."""
    keys: set[str] = set()
    for table, columns in gold_columns.items():
        for column, kind in columns.items():
            if not KEY_COLUMN.match(column):
                continue
            if kind.endswith("[]"):
                query = f'SELECT DISTINCT unnest("{column}") FROM gold."{table}"'
            else:
                query = f'SELECT DISTINCT "{column}" FROM gold."{table}"'
            keys.update(str(v) for v in truth.sql(query).to_series() if v is not None and len(str(v)) >= 6)
    assert len(keys) > 150
    return frozenset(keys)


@pytest.fixture(scope="session")
def patient_ids(truth: Lake) -> list[str]:
    return sorted(str(v) for v in truth.sql("SELECT patient_id FROM gold.patient").to_series())


# ---------------------------------------------------------------------------------------- column roles


ROLES = ("key", "dimension", "measure", "date", "quasi-identifier", "text")


@dataclass(frozen=True)
class Column:
    view: str
    name: str
    type: str
    role: str | None
    bounds: tuple[float, float] | None = None

    @property
    def forbidden(self) -> bool:
        """No position of the grammar admits it (keys are admitted only as count(DISTINCT patient_id) / join keys)."""
        return self.role in (None, "key", "quasi-identifier", "text") or bool(KEY_COLUMN.match(self.name))


def _parse_bounds(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    low, _, high = str(text).partition("..")
    return float(low), float(high)


def _shown_bounds(value: Any) -> tuple[float, float] | None:
    """Bounds as describe_view may show them: "LOW..HIGH", [low, high] or {"low", "high"}."""
    try:
        if isinstance(value, str):
            return _parse_bounds(value)
        if isinstance(value, list | tuple) and len(value) == 2:
            return float(value[0]), float(value[1])
        if isinstance(value, dict):
            return float(value.get("low", value.get("min"))), float(value.get("high", value.get("max")))
    except (TypeError, ValueError):
        return None
    return None


def declared_roles() -> dict[str, dict[str, tuple[str | None, tuple[float, float] | None]]]:
    """{view: {column: (role, bounds)}} as the ViewDefinitions in sql_on_fhir_views/ declare them."""
    declared: dict[str, dict[str, tuple[str | None, tuple[float, float] | None]]] = {}

    def walk(selects: list[dict[str, Any]], into: dict[str, tuple[str | None, tuple[float, float] | None]]) -> None:
        for select in selects:
            for column in select.get("column", []):
                tags = {t.get("name"): t.get("value") for t in (column.get("tag") or column.get("tags") or [])}
                into[column["name"]] = (tags.get("fhirlake/role"), _parse_bounds(tags.get("fhirlake/bounds")))
            walk(select.get("select", []), into)
            walk(select.get("unionAll", []), into)

    for path in sorted(VIEWS_DIR.glob("*.json")):
        document = json.loads(path.read_text())
        walk(document.get("select", []), declared.setdefault(document["name"], {}))
    return declared


@dataclass
class Catalog:
    """Every gold column with its type and role (declared in the views, else shown by describe_view)."""

    views: dict[str, dict[str, Column]]
    shown: dict[str, dict[str, dict[str, Any]]]  # describe_view's columns, when the server could be asked
    problem: str | None = None

    def columns(self, *roles: str | None, view: str | None = None) -> list[Column]:
        return [c for v, cols in sorted(self.views.items()) if view in (None, v)
                for c in cols.values() if c.role in roles and not (c.role != "key" and KEY_COLUMN.match(c.name))]

    def role(self, view: str, column: str) -> str | None:
        found = self.views.get(view, {}).get(column)
        return found.role if found else None


@pytest.fixture(scope="session")
def catalog(demo_lake: Path, gold_columns: dict[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    declared = declared_roles()
    shown: dict[str, dict[str, dict[str, Any]]] = {}
    problem = None
    try:
        root = tmp_path_factory.mktemp("catalog")
        servers = Servers(demo_lake, root)
        harness = Harness()
        try:
            session = harness.connect(servers.new(epsilon_per_day=1000.0).mcp)
            for view in gold_columns:
                reply = session.call("describe_view", {"view": view})
                if not reply.is_error and reply.data:
                    shown[view] = {c["name"]: c for c in reply.data.get("columns", [])}
        finally:
            harness.close()
            servers.close()
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
    views: dict[str, dict[str, Column]] = {}
    for view, columns in gold_columns.items():
        for name, kind in columns.items():
            role, bounds = declared.get(view, {}).get(name, (None, None))
            described = shown.get(view, {}).get(name, {})
            if role is None:
                role = described.get("role")
            if bounds is None:
                bounds = _shown_bounds(described.get("bounds"))
            views.setdefault(view, {})[name] = Column(view, name, kind, role, bounds)
    return Catalog(views, shown, problem)


# ---------------------------------------------------------------------------------------- one patient to single out


@dataclass(frozen=True)
class Target:
    """The only patient of its region: "everyone" and "everyone but this region" differ by exactly this patient."""

    patient_id: str
    region: str
    gender: str
    age: int
    has_code: str  # a condition code this patient has, shared by at least 2k patients
    lacks_code: str  # a condition code this patient lacks, shared by at least 2k patients


@pytest.fixture(scope="session")
def target(truth: Lake) -> Target:
    region, patient, gender, age = truth.sql(
        "SELECT region, any_value(patient_id), any_value(gender), any_value(age) FROM gold.patient "
        "GROUP BY region HAVING count(*) = 1 ORDER BY region LIMIT 1").row(0)
    has = truth.sql(f"SELECT code FROM gold.condition GROUP BY code HAVING count(DISTINCT patient_id) >= {2 * K} "
                    f"AND bool_or(patient_id = '{patient}') ORDER BY count(DISTINCT patient_id) DESC, code LIMIT 1").item()
    lacks = truth.sql(f"SELECT code FROM gold.condition GROUP BY code HAVING count(DISTINCT patient_id) >= {2 * K} "
                      f"AND NOT bool_or(patient_id = '{patient}') ORDER BY count(DISTINCT patient_id) DESC, code LIMIT 1").item()
    return Target(str(patient), str(region), str(gender), int(age), str(has), str(lacks))


EVERYONE: dict[str, Any] = {"kind": "demographics"}


def but_region(criteria: dict[str, Any], region: str) -> dict[str, Any]:
    return {"kind": "and", "criteria": [criteria, {"kind": "not", "criterion": {"kind": "demographics", "regions": [region]}}]}


def cohort_pad(criteria: dict[str, Any], i: int) -> dict[str, Any]:
    """The same patients under another canonical form (or/and/not with criteria nobody meets)."""
    nobody = {"kind": "condition", "codes": [f"pad-{i}"]}
    form = i % 4
    if form == 0:
        return {"kind": "or", "criteria": [criteria, nobody]}
    if form == 1:
        return {"kind": "and", "criteria": [criteria, {"kind": "not", "criterion": nobody}]}
    if form == 2:
        return {"kind": "and", "criteria": [{"kind": "not", "criterion": {"kind": "demographics", "regions": [f"pad-region-{i}"]}},
                                            criteria]}
    return {"kind": "or", "criteria": [nobody, {"kind": "and", "criteria": [criteria]}, {"kind": "procedure", "codes": [f"pad-{i}"]}]}


def sql_pad(i: int, alias: str = "p") -> str:
    """A condition every patient meets, another canonical form each time (gender is never null in the demo lake)."""
    return f"{alias}.gender NOT IN ('pad-{i}')"


def strip_privacy(data: dict[str, Any] | None) -> dict[str, Any]:
    """An answer without its privacy object (what must be identical when a release is repeated)."""
    return {k: v for k, v in (data or {}).items() if k != "privacy"}


def noise_bound(reply: Reply) -> float:
    """NOISE_BOUND x the sum of the scales of the answer's statistics (a margin may add its cells' noise)."""
    noise = reply.privacy.get("noise") or []
    assert noise, f"an answer without noise: {reply.describe()}"
    return NOISE_BOUND * sum(float(n["scale"]) for n in noise)
