"""What counts as an outage (retry later) rather than a failure of the work, and how long to wait."""

from __future__ import annotations

from itertools import islice

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, UnknownTopicOrPartitionError

from libs.common.outages import backoff, is_outage


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.InternalClientError(
            "cannot switch to state 15; another operation (2) is in progress"
        ),
        asyncpg.InterfaceError("connection is closed"),
        KafkaConnectionError("broker down"),
    ],
)
def test_an_unreachable_or_overloaded_dependency_is_an_outage(error: BaseException) -> None:
    assert is_outage(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad"),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.UndefinedTableError("no such table"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        UnknownTopicOrPartitionError(),
    ],
)
def test_a_failure_of_the_work_itself_is_not(error: BaseException) -> None:
    assert not is_outage(error)


def test_backoff_doubles_up_to_its_cap() -> None:
    assert list(islice(backoff(0.2, 1.0), 6)) == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
