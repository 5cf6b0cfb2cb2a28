"""What an outage of a dependency looks like from inside a call: the caller should retry later."""

from __future__ import annotations

from collections.abc import Iterator

import asyncpg
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError, KafkaUnavailableError

_OUTAGES = (
    OSError,  # connection refused or reset; TimeoutError (a pool or connect timeout) is one too
    asyncpg.PostgresConnectionError,  # the connection was lost or refused
    asyncpg.exceptions.OperatorInterventionError,  # the server is shutting down or starting up
    asyncpg.exceptions.InsufficientResourcesError,  # too many connections, disk full
    KafkaConnectionError,
    KafkaTimeoutError,
    KafkaUnavailableError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says a dependency is unreachable or overloaded rather than the request bad."""
    if isinstance(exc, _OUTAGES):
        return True
    # A connection broken by a server going away can be left mid-protocol ("cannot switch to
    # state ...") or closed under the caller.
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return True
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)


def backoff(first_s: float, last_s: float) -> Iterator[float]:
    """Waits between retries while an outage lasts: doubling from ``first_s`` up to ``last_s``."""
    delay = first_s
    while True:
        yield delay
        delay = min(delay * 2, last_s)
