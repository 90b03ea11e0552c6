"""The errors the Bulk Data client raises on purpose.

Every one derives from :class:`fhirlake.errors.FhirlakeError`, so the CLI prints it as one line.
Lower-level errors (``httpx``, ``jwt``, ``cryptography``, ``OSError``) never escape the client:
they are mapped here at the boundary with ``raise ... from exc``::

    FhirlakeError
    ├── ConfigurationError
    │   └── SourceConfigError       the sources file is wrong (names file and key)
    └── BulkError                   anything the Bulk Data client gives up on
        ├── KickoffError            the server refused the kick-off (its OperationOutcome is kept)
        ├── ExportFailedError       the status endpoint reported that the export failed
        ├── ExportExpiredError      the server no longer has the export or one of its files (404/410)
        ├── ExportStalledError      the job's progress has not changed for the stall timeout
        ├── DownloadError           a file could not be downloaded after every retry
        │   └── CountMismatchError  a file holds a different number of lines than the manifest says
        ├── BulkProtocolError       the server broke the protocol (no Content-Location, bad manifest)
        ├── BulkNetworkError        the server could not be reached, or kept failing, after every retry
        ├── BulkTimeoutError        the overall deadline passed before the export finished
        ├── AuthError               discovery, key loading, signing or the token request failed
        └── ResumeConflictError     an unfinished export of the source was asked for differently

Messages name the URL, file or key concerned and say why; they never contain a token or key.
"""

from __future__ import annotations

from collections.abc import Sequence

from fhirlake.errors import ConfigFileError, FhirlakeError

__all__ = [
    "AuthError",
    "BulkError",
    "BulkNetworkError",
    "BulkProtocolError",
    "BulkTimeoutError",
    "CountMismatchError",
    "DownloadError",
    "ExportExpiredError",
    "ExportFailedError",
    "ExportStalledError",
    "KickoffError",
    "ResumeConflictError",
    "SourceConfigError",
]


class BulkError(FhirlakeError):
    """Root of the errors the Bulk Data client raises."""


class SourceConfigError(ConfigFileError):
    """The sources file is missing, unreadable or holds an invalid value.

    The message reads ``<file>: <dotted key>: <reason>``.
    """

    @property
    def key(self) -> str:
        """The dotted key of the offending value (the ``pointer`` of a sources file)."""
        return self.pointer


class _HttpError(BulkError):
    """A BulkError tied to one HTTP exchange: keeps the URL, status and OperationOutcome texts."""

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status_code: int | None = None,
        issues: Sequence[str] = (),
    ) -> None:
        self.url = url
        self.status_code = status_code
        self.issues = tuple(issues)
        if self.issues:
            message = f"{message}: {'; '.join(self.issues)}"
        super().__init__(message)


class KickoffError(_HttpError):
    """The server answered the kick-off with an error (4xx, or 5xx that is not transient)."""


class ExportFailedError(_HttpError):
    """The status endpoint reported that the export job itself failed."""


class ExportExpiredError(_HttpError):
    """The server no longer has the export job or one of its files (404 or 410).

    Nothing already downloaded is lost; run again with ``restart_expired`` (CLI:
    ``--restart-expired``) to start a new export.
    """


class ExportStalledError(_HttpError):
    """The server keeps answering "in progress" but the job's progress has not changed for the
    stall timeout (``RetryPolicy.stall_timeout``).

    Run again with ``restart_stalled`` (CLI: ``--restart-stalled``): the stalled job is
    DELETEd on the server, its export marked abandoned, and a new export started.
    """


class DownloadError(_HttpError):
    """A file could not be downloaded after every retry (or was refused outright)."""


class CountMismatchError(DownloadError):
    """A downloaded file holds a different number of lines than the manifest's ``count``."""

    def __init__(self, url: str, *, expected: int, actual: int) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{url}: the manifest says {expected} resources but the file holds {actual} lines",
            url=url,
        )


class BulkProtocolError(_HttpError):
    """The server's answer breaks the Bulk Data protocol (missing header, malformed manifest)."""


class BulkNetworkError(_HttpError):
    """The server could not be reached, or kept failing, after every retry."""


class BulkTimeoutError(BulkError):
    """The overall deadline passed before the export finished."""


class AuthError(_HttpError):
    """SMART discovery, key loading, assertion signing or the token request failed."""


class ResumeConflictError(BulkError):
    """An unfinished export of the source exists but was started with a different request."""
