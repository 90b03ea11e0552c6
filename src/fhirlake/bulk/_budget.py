"""How long to wait, and when to give up: the retry budget of one request and the stall watch
of one export job. Pure, like the rest of the protocol core: the shells pass the monotonic
``now`` and do the sleeping, so tests need neither a network nor real waits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhirlake.bulk._exceptions import BulkNetworkError, BulkTimeoutError, ExportStalledError
from fhirlake.bulk._models import RetryPolicy

if TYPE_CHECKING:
    from fhirlake.bulk._protocol import Wait

__all__ = ["RetryBudget", "StallWatch", "deadline_at"]


class RetryBudget:
    """Counts waits and failures of one request and says how long to sleep before the next try.

    Pure: the caller passes the monotonic ``now`` and does the sleeping. A failure streak is
    reset by any answer that is not a failure. Every wait ends by the deadline at the latest
    (a ``Retry-After`` of an hour with ten minutes left waits ten minutes); once the deadline
    has passed, the next wait raises BulkTimeoutError.
    """

    def __init__(self, policy: RetryPolicy, *, what: str, deadline_at: float | None) -> None:
        self.policy = policy
        self.what = what
        self.deadline_at = deadline_at
        self.waits = 0
        self.failures = 0

    def on_wait(self, decision: Wait, *, now: float) -> float:
        """The delay before the next poll after a 202 or 429."""
        self.waits += 1
        self.failures = 0
        delay = (
            self._clamp(decision.delay)
            if decision.delay is not None
            else self.policy.backoff(self.waits)
        )
        return self._check_deadline(delay, now=now, reason=decision.reason)

    def on_failure(self, hint: float | None, reason: str, *, now: float) -> float:
        """The delay before the next try after a transient failure; raises when the budget is spent."""
        self.failures += 1
        if self.failures >= self.policy.max_attempts:
            raise BulkNetworkError(f"{self.what}: gave up after {self.failures} attempts: {reason}")
        delay = self._clamp(hint) if hint is not None else self.policy.backoff(self.failures)
        return self._check_deadline(delay, now=now, reason=reason)

    def on_success(self) -> None:
        """Forget the failure streak."""
        self.failures = 0

    def _clamp(self, delay: float) -> float:
        return min(max(0.0, delay), self.policy.max_retry_after)

    def _check_deadline(self, delay: float, *, now: float, reason: str) -> float:
        """The delay cut to the time left before the deadline; raises once no time is left."""
        if self.deadline_at is None:
            return delay
        left = self.deadline_at - now
        if left <= 0:
            raise BulkTimeoutError(
                f"{self.what}: the deadline of {self.policy.deadline:g} s has passed ({reason})"
            )
        return min(delay, left)


class StallWatch:
    """Notices an export job that has stopped progressing while the server still answers 202.

    Progress is the ``X-Progress`` text: when it has not changed for ``policy.stall_timeout``
    seconds (monotonic), :meth:`observe` raises ExportStalledError naming the job. A server
    that sends no ``X-Progress`` counts as unchanged, so its jobs are bounded by the same time.
    Pure, like :class:`RetryBudget`.
    """

    def __init__(self, policy: RetryPolicy, *, status_url: str, now: float) -> None:
        self.limit = policy.stall_timeout
        self.status_url = status_url
        self.progress: str | None = None
        self.since = now

    def observe(self, progress: str | None, *, now: float) -> None:
        """Record the progress of one 202 answer; raise when it has been the same for too long."""
        if progress != self.progress:
            self.progress, self.since = progress, now
            return
        if self.limit is not None and now - self.since >= self.limit:
            shown = f"X-Progress still {progress!r}" if progress else "no X-Progress"
            raise ExportStalledError(
                f"{self.status_url}: the export job made no progress for {now - self.since:g} s "
                f"({shown}); run again with --restart-stalled to cancel it and start a new one",
                url=self.status_url,
            )


def deadline_at(policy: RetryPolicy, *, now: float) -> float | None:
    """The monotonic time at which the policy's overall deadline passes."""
    return None if policy.deadline is None else now + policy.deadline
