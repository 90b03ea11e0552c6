"""The pure protocol core of the Bulk Data client: no sockets, no files, no sleeping.

It builds the requests (kick-off, status, download, delete), reads the headers that steer the
client (``Retry-After``, ``X-Progress``, ``Content-Location``, ``Expires``) and turns every
answer into a decision for the I/O shells: go on, wait, retry after a failure, or raise.
Both :class:`~fhirlake.bulk.BulkClient` and :class:`~fhirlake.bulk.AsyncBulkClient` share it,
and it is unit-tested without a network.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from fhirlake.bulk._exceptions import (
    AuthError,
    BulkProtocolError,
    DownloadError,
    ExportExpiredError,
    ExportFailedError,
    KickoffError,
)
from fhirlake.bulk._models import (
    CompletedExport,
    ExportJob,
    ExportRequest,
    Manifest,
    OutcomeIssue,
)

FHIR_JSON = "application/fhir+json"
FHIR_NDJSON = "application/fhir+ndjson"
_EPOCH_THRESHOLD = 1_000_000_000.0  # a Retry-After this large is an epoch time, not a delay
# Epoch seconds pass 1e11 only in the year 5138: a larger value is an epoch in milliseconds.
_EPOCH_MS_THRESHOLD = 100_000_000_000.0
_BODY_EXCERPT = 300  # characters of a non-FHIR error body worth showing
_HEAD = re.compile(r"<(head|style|script)\b.*?</\1>", re.IGNORECASE | re.DOTALL)
_MARKUP = re.compile(r"<[^>]*>")
_TRANSIENT_STATUS = frozenset({408, 500, 502, 503, 504})


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Accepted:
    """The kick-off was accepted: poll ``job.status_url``."""

    job: ExportJob


@dataclass(frozen=True)
class Wait:
    """Not a failure (202 in progress, 429): wait ``delay`` seconds (None: use the backoff)."""

    delay: float | None
    reason: str
    progress: str | None = None


@dataclass(frozen=True)
class Retry:
    """A failure worth retrying (transient 5xx, 408, a network error)."""

    delay: float | None
    reason: str


@dataclass(frozen=True)
class Done:
    """The export is complete."""

    completed: CompletedExport


@dataclass(frozen=True)
class Proceed:
    """The download answer is a 200: stream its body."""


# --------------------------------------------------------------------------- requests


def kickoff_request(request: ExportRequest) -> httpx.Request:
    """Build the kick-off request: GET with query parameters, or POST with a ``Parameters`` body.

    Comma lists are sent joined (``_type=A,B``); each ``_typeFilter`` query is sent as its own
    parameter, as its value may itself hold commas.
    """
    headers = {"Accept": FHIR_JSON, "Prefer": _prefer(request)}
    if request.method == "GET":
        return httpx.Request(
            "GET", request.endpoint, params=_query_params(request), headers=headers
        )
    body = json.dumps(_parameters_body(request)).encode()
    headers["Content-Type"] = FHIR_JSON
    return httpx.Request("POST", request.endpoint, content=body, headers=headers)


def _prefer(request: ExportRequest) -> str:
    return "respond-async, handling=lenient" if request.lenient else "respond-async"


def _query_params(request: ExportRequest) -> list[tuple[str, str | int | float | bool | None]]:
    params: list[tuple[str, str | int | float | bool | None]] = []
    if request.output_format:
        params.append(("_outputFormat", request.output_format))
    if request.since:
        params.append(("_since", request.since))
    if request.types:
        params.append(("_type", ",".join(request.types)))
    if request.elements:
        params.append(("_elements", ",".join(request.elements)))
    params.extend(("_typeFilter", query) for query in request.type_filters)
    if request.include_associated_data:
        params.append(("includeAssociatedData", ",".join(request.include_associated_data)))
    return params


def _parameters_body(request: ExportRequest) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    if request.output_format:
        parameters.append({"name": "_outputFormat", "valueString": request.output_format})
    if request.since:
        parameters.append({"name": "_since", "valueInstant": request.since})
    if request.types:
        parameters.append({"name": "_type", "valueString": ",".join(request.types)})
    if request.elements:
        parameters.append({"name": "_elements", "valueString": ",".join(request.elements)})
    parameters.extend({"name": "_typeFilter", "valueString": q} for q in request.type_filters)
    parameters.extend(
        {"name": "includeAssociatedData", "valueCode": value}
        for value in request.include_associated_data
    )
    parameters.extend(
        {"name": "patient", "valueReference": {"reference": ref}} for ref in request.patients
    )
    return {"resourceType": "Parameters", "parameter": parameters}


def status_request(job: ExportJob) -> httpx.Request:
    """Build a status poll (``Accept: application/json``, as the IG says)."""
    return httpx.Request("GET", job.status_url, headers={"Accept": "application/json"})


def delete_request(job: ExportJob) -> httpx.Request:
    """Build the DELETE that cancels a job, or tells the server a finished one can go."""
    return httpx.Request("DELETE", job.status_url, headers={"Accept": FHIR_JSON})


def download_request(url: str) -> httpx.Request:
    """Build a file download; ``Accept-Encoding: gzip`` lets the server compress on the wire."""
    return httpx.Request("GET", url, headers={"Accept": FHIR_NDJSON, "Accept-Encoding": "gzip"})


# --------------------------------------------------------------------------- headers and bodies


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or None when absent or unreadable.

    Accepts delay-seconds (``120``), an HTTP-date (``Wed, 21 Oct 2015 07:28:00 GMT``) and,
    tolerantly, an epoch time in seconds (``1729500000``) or, beyond any plausible epoch in
    seconds, in milliseconds (``1729500000000``), which some servers send.
    A time in the past gives 0. ``now`` is the wall clock (epoch seconds).

    >>> parse_retry_after("5", now=0.0)
    5.0
    >>> parse_retry_after("1700000030000", now=1_700_000_000.0)
    30.0
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if math.isfinite(number):
        if number < 0:
            return None
        if number >= _EPOCH_MS_THRESHOLD:
            number /= 1000.0
        return max(0.0, number - now) if number >= _EPOCH_THRESHOLD else number
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT; be lenient with servers that omit it
        return None
    return max(0.0, when.timestamp() - now)


def read_progress(headers: Mapping[str, str]) -> str | None:
    """The ``X-Progress`` text (the IG caps it at 100 characters), or None."""
    value = headers.get("x-progress")
    if value is None or not value.strip():
        return None
    return value.strip()[:100]


def parse_outcome(body: bytes) -> tuple[OutcomeIssue, ...]:
    """The issues of an OperationOutcome body; an unreadable body gives no issues, never an error."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ()
    return outcome_issues(data)


def outcome_issues(data: object) -> tuple[OutcomeIssue, ...]:
    """The issues of a decoded OperationOutcome (anything else gives none)."""
    if not isinstance(data, dict) or data.get("resourceType") != "OperationOutcome":
        return ()
    issues = data.get("issue")
    if not isinstance(issues, list):
        return ()
    found = []
    for issue in issues:
        if not isinstance(issue, dict):
            continue
        details = issue.get("details")
        text = issue.get("diagnostics") or (
            details.get("text") if isinstance(details, dict) else None
        )
        found.append(
            OutcomeIssue(
                severity=str(issue.get("severity", "error")),
                code=str(issue.get("code", "unknown")),
                text=str(text) if text else "",
            )
        )
    return tuple(found)


def _texts(issues: tuple[OutcomeIssue, ...]) -> list[str]:
    return [str(issue) for issue in issues]


def server_says(body: bytes) -> list[str]:
    """What an error body tells a person, whatever its form, as short one-line texts.

    An OperationOutcome gives its issues; an OAuth error (``{"error": ..., "error_description":
    ...}``) its code and description; any other body (a proxy's text or HTML page for a 413)
    its first characters on one line. An empty body gives nothing.

    >>> server_says(b"Request Entity Too Large")
    ['server said: Request Entity Too Large']
    """
    issues = parse_outcome(body)
    if issues:
        return _texts(issues)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        description = data.get("error_description")
        text = f"{data['error']}: {description}" if isinstance(description, str) else data["error"]
        return [f"server said: {_one_line(text)}"]
    text = body.decode("utf-8", "replace")
    if text.lstrip().startswith("<"):  # an HTML or XML page: its words, not its markup
        text = _MARKUP.sub(" ", _HEAD.sub(" ", text))
    text = _one_line(text)
    return [f"server said: {text}"] if text else []


def _one_line(text: str) -> str:
    """Whitespace and control characters folded to single spaces, cut to a readable length."""
    folded = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return folded if len(folded) <= _BODY_EXCERPT else folded[: _BODY_EXCERPT - 1] + "…"


# --------------------------------------------------------------------------- interpretation


def interpret_kickoff(response: httpx.Response, *, now: float) -> Accepted | Wait | Retry:
    """Decide what a kick-off answer means. Raises KickoffError or BulkProtocolError."""
    url = str(response.request.url)
    status = response.status_code
    if status == 202:
        location = response.headers.get("content-location")
        if not location:
            raise BulkProtocolError(
                f"{url}: the server accepted the kick-off but sent no Content-Location", url=url
            )
        return Accepted(ExportJob(status_url=str(response.request.url.join(location))))
    retry_after = parse_retry_after(response.headers.get("retry-after"), now=now)
    if status == 429:
        return Wait(retry_after, f"kick-off: {status} too many requests")
    issues = parse_outcome(response.content)
    if _is_transient(status, issues):
        return Retry(retry_after, f"kick-off: {status} {response.reason_phrase}".rstrip())
    if status == 200:
        raise BulkProtocolError(
            f"{url}: the server answered 200 instead of 202 (it does not run the async pattern)",
            url=url,
            status_code=status,
        )
    raise KickoffError(
        f"{url}: kick-off refused with {status} {response.reason_phrase}".rstrip(),
        url=url,
        status_code=status,
        issues=server_says(response.content),
    )


def interpret_status(response: httpx.Response, *, now: float) -> Done | Wait | Retry:
    """Decide what a status poll answer means.

    Raises ExportExpiredError (404/410), ExportFailedError (other errors that are not
    transient) or BulkProtocolError (a 200 without a readable manifest).
    """
    url = str(response.request.url)
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"), now=now)
    if status == 202:
        progress = read_progress(response.headers)
        return Wait(retry_after, "in progress", progress=progress)
    if status == 200:
        try:
            data = json.loads(response.content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise BulkProtocolError(f"{url}: the manifest is not JSON ({exc})", url=url) from exc
        manifest = Manifest.from_json(data, url=url)
        return Done(CompletedExport(manifest, response.content, response.headers.get("expires")))
    if status == 429:
        return Wait(retry_after, "status: 429 too many requests")
    issues = parse_outcome(response.content)
    if status in (404, 410):
        raise ExportExpiredError(
            f"{url}: the server no longer has this export ({status})",
            url=url,
            status_code=status,
            issues=server_says(response.content),
        )
    if _is_transient(status, issues):
        return Retry(retry_after, f"status: {status} {response.reason_phrase}".rstrip())
    if status == 401:
        raise AuthError(
            f"{url}: the server refused the access token (401)",
            url=url,
            status_code=401,
            issues=server_says(response.content),
        )
    raise ExportFailedError(
        f"{url}: the export failed with {status} {response.reason_phrase}".rstrip(),
        url=url,
        status_code=status,
        issues=server_says(response.content),
    )


def interpret_download(response: httpx.Response, *, now: float) -> Proceed | Wait | Retry:
    """Decide what the headers of a download answer mean.

    The body of a 200 is not read yet (it is streamed to disk); the shells read the body of
    any other answer first, so that an error shows what the server said.
    """
    url = str(response.request.url)
    status = response.status_code
    if status == 200:
        return Proceed()
    retry_after = parse_retry_after(response.headers.get("retry-after"), now=now)
    if status == 429:
        return Wait(retry_after, f"{status} too many requests")
    if status in _TRANSIENT_STATUS:
        return Retry(retry_after, f"{status} {response.reason_phrase}".rstrip())
    if status in (404, 410):
        raise ExportExpiredError(
            f"{url}: the file is gone ({status}); the export has expired, "
            "start a new one (CLI: --restart-expired)",
            url=url,
            status_code=status,
            issues=_said(response),
        )
    if status == 401:
        raise AuthError(
            f"{url}: the server refused the access token even after a new one (401)",
            url=url,
            status_code=status,
            issues=_said(response),
        )
    raise DownloadError(
        f"{url}: download refused with {status} {response.reason_phrase}".rstrip(),
        url=url,
        status_code=status,
        issues=_said(response),
    )


def _said(response: httpx.Response) -> list[str]:
    """``server_says`` of a response whose body may not have been read (then: nothing)."""
    try:
        return server_says(response.content)
    except httpx.ResponseNotRead:
        return []


def _is_transient(status: int, issues: tuple[OutcomeIssue, ...]) -> bool:
    """A 5xx is transient when its OperationOutcome says so, or when it has none at all
    (a proxy or load balancer answered, not the FHIR server)."""
    if any(issue.code == "transient" for issue in issues):
        return True
    return status in _TRANSIENT_STATUS and not issues


# --------------------------------------------------------------------------- line counting


class LineCounter:
    """Counts NDJSON lines in a byte stream fed chunk by chunk (a last line without ``\\n`` counts)."""

    def __init__(self) -> None:
        self.newlines = 0
        self._open_line = False

    def feed(self, chunk: bytes) -> None:
        """Account for the next chunk of the stream."""
        if chunk:
            self.newlines += chunk.count(b"\n")
            self._open_line = not chunk.endswith(b"\n")

    @property
    def lines(self) -> int:
        """Lines seen so far, counting an unterminated last line."""
        return self.newlines + (1 if self._open_line else 0)
