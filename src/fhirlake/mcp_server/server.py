"""The MCP server: tools, resources and a prompt over the cohort service (mcp SDK 2.x ``MCPServer``).

:func:`build_server` wires a :class:`~fhirlake.serving.service.CohortService` into an
``MCPServer``: every tool goes through the :class:`~fhirlake.mcp_server.dispatch.Dispatcher`
(client resolution, tool permission, the call record), carries read-only annotations (except
``save_cohort``, which only writes the server's memory), takes typed inputs and returns a typed
(structured) answer. :func:`fhirlake.mcp_server.http.build_http_app` serves the same server
over streamable HTTP.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from mcp.server.auth.provider import TokenVerifier
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import Message, UserMessage
from mcp.types import Tool as MCPTool
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from fhirlake.cohorts.model import CohortDefinition, Measure
from fhirlake.mcp_server.context import (
    CallSink,
    ClientContext,
    ClientResolver,
    Transport,
    local_user,
)
from fhirlake.mcp_server.dispatch import Dispatcher
from fhirlake.serving.answers import (
    BreakdownAnswer,
    CodeSearchAnswer,
    CompareAnswer,
    CountAnswer,
    PrivacyInfo,
    SavedCohortAnswer,
    SqlAnswer,
    ViewDescription,
    ViewsAnswer,
)
from fhirlake.serving.errors import QueryRefused
from fhirlake.serving.service import CohortService

__all__ = ["TOOLS", "FhirlakeServer", "ServerOptions", "build_server"]

_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
_SAVES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
TOOLS = ("list_views", "describe_view", "search_codes", "count_cohort", "cohort_breakdown", "save_cohort",
         "list_cohorts", "compare_cohorts", "run_aggregate_sql")

Dimension = Literal["sex", "age_band", "region", "country", "source", "deceased", "year"]

_INSTRUCTIONS = """fhirlake answers aggregate questions about the patients of a FHIR lakehouse; it never returns
a row about one person. Counts under k are shown as '<k' and some others are hidden so they cannot be
worked out; every answer says whether something was suppressed. Start with list_views, search_codes (to
find codes by text), then count_cohort / cohort_breakdown with a structured cohort definition."""

_PROMPT = """You are exploring a cohort in a FHIR lakehouse through the fhirlake tools. Question: {question}

1. Call search_codes for each clinical concept in the question (e.g. "diabetes", "hba1c") and pick the codes
   with the most patients; note which criterion kind each belongs to (condition, observation, medication...).
2. Build a cohort definition: {{"criteria": {{"kind": "and", "criteria": [...]}}, "index_date": "YYYY-MM-DD"}} with
   demographics (sex, age_min/age_max at the index date), event criteria with codes and a window
   {{"start": ..., "end": ...}}, and value filters for observations ({{"op": "gt", "value": 8, "unit": "%"}}).
3. Call count_cohort; then cohort_breakdown with dimensions such as ["age_band"] or ["sex", "age_band"], and a
   measure (an observation code) for mean, median and quartiles.
4. Save useful cohorts with save_cohort and compare them with compare_cohorts.
5. Report counts exactly as shown: '<k' means fewer than k patients, 'suppressed' means hidden so that a small
   count cannot be derived. Do not try to work out suppressed values; the server refuses queries that would.
Use run_aggregate_sql only for what the cohort tools cannot express: one aggregate SELECT over the gold views."""


class CohortList(BaseModel):
    """The cohorts saved for this client (and shared ones)."""

    names: list[str]
    privacy: PrivacyInfo


@dataclass(frozen=True)
class ServerOptions:
    """How the server identifies callers and records calls, and its HTTP auth (for #9)."""

    resolver: ClientResolver = local_user
    on_call: CallSink | None = None
    transport: Transport = "stdio"
    token_verifier: TokenVerifier | None = None
    auth: AuthSettings | None = None
    name: str = "fhirlake"
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class FhirlakeServer:
    """The MCP server, with the service and dispatcher behind it."""

    mcp: MCPServer
    service: CohortService
    dispatcher: Dispatcher


class _ScopedMCPServer(MCPServer):
    """An ``MCPServer`` whose ``tools/list`` shows each caller only the tools it may call.

    A tool outside the caller's scope is still refused (and audited) if called by name; hiding
    it keeps a model from planning with tools it cannot use.
    """

    def __init__(self, dispatcher: Dispatcher, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dispatcher = dispatcher

    async def list_tools(self) -> list[MCPTool]:
        tools = await super().list_tools()
        visible = set(self.dispatcher.visible([tool.name for tool in tools]))
        return [tool for tool in tools if tool.name in visible]


def build_server(service: CohortService, options: ServerOptions | None = None) -> FhirlakeServer:
    """An ``MCPServer`` with the fhirlake tools, resources and prompt over ``service``."""
    options = options or ServerOptions()
    dispatcher = Dispatcher(options.resolver, options.on_call, options.transport)
    mcp = _ScopedMCPServer(dispatcher, options.name, instructions=_INSTRUCTIONS, token_verifier=options.token_verifier,
                           auth=options.auth, log_level="WARNING")
    _add_tools(mcp, service, dispatcher)
    _add_resources(mcp, service, dispatcher)
    mcp.prompt(name="explore_cohort", description="How to explore a cohort with the fhirlake tools, step by step.")(_explore_prompt)
    return FhirlakeServer(mcp, service, dispatcher)


def _explore_prompt(question: str) -> list[Message]:
    return [UserMessage(_PROMPT.format(question=question))]


def _add_tools(mcp: MCPServer, service: CohortService, dispatcher: Dispatcher) -> None:
    @mcp.tool(annotations=_READ_ONLY, description="The gold views you can query: description and patient count; the lake's snapshot.")
    async def list_views() -> ViewsAnswer:
        return await dispatcher.call("list_views", {}, lambda c, t: service.list_views(c.id, c.scope, t))

    @mcp.tool(annotations=_READ_ONLY, description="A view's columns (type, description, whether a key) and, for low-cardinality "
              "columns, their values with patient counts.")
    async def describe_view(view: Annotated[str, Field(description="View name, e.g. 'condition'.", max_length=100)]) -> ViewDescription:
        return await dispatcher.call("describe_view", {"view": view}, lambda c, t: service.describe_view(c.id, view, c.scope, t))

    @mcp.tool(annotations=_READ_ONLY, description="Find codes present in the lake by text (display or exact code): code system, "
              "code, display, patient count, and the cohort criterion kind to use them with.")
    async def search_codes(text: Annotated[str, Field(min_length=2, max_length=200)],
                           limit: Annotated[int, Field(ge=1, le=100)] = 25) -> CodeSearchAnswer:
        return await dispatcher.call("search_codes", {"text": text, "limit": limit},
                                     lambda c, t: service.search_codes(c.id, text, c.scope, t, limit=limit))

    @mcp.tool(annotations=_READ_ONLY, description="Count the patients of a cohort definition (suppressed under k).")
    async def count_cohort(cohort: CohortDefinition) -> CountAnswer:
        return await dispatcher.call("count_cohort", {"cohort": _dump(cohort)}, lambda c, t: service.count(c.id, cohort, c.scope, t))

    @mcp.tool(annotations=_READ_ONLY, description="A cohort's patients by dimensions (sex, age_band, region, country, source, "
              "deceased, year of the measure), with counts and, given a measure (observation codes), mean, median and quartiles "
              "of one value per patient.")
    async def cohort_breakdown(
        cohort: CohortDefinition,
        dimensions: Annotated[list[Dimension], Field(max_length=3)],
        measure: Measure | None = None,
        age_band_years: Annotated[int, Field(ge=5, le=30)] = 10,
    ) -> BreakdownAnswer:
        arguments = {"cohort": _dump(cohort), "dimensions": list(dimensions), "measure": _dump(measure), "age_band_years": age_band_years}
        return await dispatcher.call("cohort_breakdown", arguments, lambda c, t: service.breakdown(
            c.id, cohort, list(dimensions), c.scope, t, measure=measure, age_band_years=age_band_years))

    @mcp.tool(annotations=_SAVES, description="Save a cohort definition under a name (this server's memory), to refer to it "
              "later as {\"kind\": \"cohort\", \"name\": ...} or compare it.")
    async def save_cohort(name: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\- ]+$")],
                          cohort: CohortDefinition) -> SavedCohortAnswer:
        return await dispatcher.call("save_cohort", {"name": name, "cohort": _dump(cohort)},
                                     lambda c, t: service.save_cohort(c.id, name, cohort, c.scope, t))

    @mcp.tool(annotations=_READ_ONLY, description="The names of the saved cohorts.")
    async def list_cohorts() -> CohortList:
        return await dispatcher.call("list_cohorts", {}, lambda c, t: CohortList(names=service.saved_cohorts(c.id),
                                                                                 privacy=service.budget(c.id)))

    @mcp.tool(annotations=_READ_ONLY, description="Compare two cohorts (definitions, or {\"criteria\": {\"kind\": \"cohort\", "
              "\"name\": ...}}): patients in a, b, both, only a, only b.")
    async def compare_cohorts(a: CohortDefinition, b: CohortDefinition) -> CompareAnswer:
        return await dispatcher.call("compare_cohorts", {"a": _dump(a), "b": _dump(b)},
                                     lambda c, t: service.compare(c.id, a, b, c.scope, t))

    @mcp.tool(annotations=_READ_ONLY, description="Guarded escape hatch: one aggregate SELECT over the gold views (DuckDB SQL). "
              "Aggregates: count, sum, avg, median, quantile_cont, stddev, variance, on plain columns; key columns (*_id) only "
              "counted or in filters/joins; no files, no functions that read; rows aggregating fewer than k patients are left out.")
    async def run_aggregate_sql(sql: Annotated[str, Field(min_length=1, max_length=20000)]) -> SqlAnswer:
        return await dispatcher.call("run_aggregate_sql", {"sql": sql}, lambda c, t: service.run_sql(c.id, sql, c.scope, t))


def _add_resources(mcp: MCPServer, service: CohortService, dispatcher: Dispatcher) -> None:
    def schema(client: ClientContext, view: str | None) -> str:
        catalog = service.reader.catalog
        names = [view] if view is not None else sorted(catalog.views)
        described = []
        for name in names:
            info = catalog.view(name)
            if info is None or not client.scope.allows_view(name) or not info.has_patient:
                if view is not None:
                    raise QueryRefused(f"unknown view {view!r}")
                continue
            hidden = client.scope.hidden(name)
            described.append({"view": name, "description": info.description, "columns": [
                {"name": c.name, "type": c.type, "description": c.description, "key": c.is_key}
                for c in info.columns if c.name not in hidden]})
        return json.dumps(described if view is None else described[0], indent=1)

    @mcp.resource("fhirlake://schema", name="schema", mime_type="application/json",
                  description="Every gold view you can query, with its columns.")
    async def all_views() -> str:
        return await dispatcher.call("resource:schema", {}, lambda c, t: schema(c, None))

    @mcp.resource("fhirlake://schema/{view}", name="view-schema", mime_type="application/json",
                  description="One gold view's columns (name, type, description, key).")
    async def one_view(view: str) -> str:
        return await dispatcher.call("resource:schema", {"view": view}, lambda c, t: schema(c, view))

    @mcp.resource("fhirlake://cohort-definition", name="cohort-definition", mime_type="application/json",
                  description="The JSON schema of a cohort definition (count_cohort, cohort_breakdown...).")
    def cohort_schema() -> str:
        return json.dumps(CohortDefinition.model_json_schema(), indent=1)


def _dump(model: BaseModel | None) -> object:
    return None if model is None else model.model_dump(mode="json", exclude_none=True)
