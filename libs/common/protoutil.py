"""Small protobuf conversions every API layer needs."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from libs.common.errors import InvalidArgument

_CALENDAR_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def request_uuid(text: str, field: str = "request_id") -> uuid.UUID:
    """A request's UUID field, or INVALID_ARGUMENT naming ``field``."""
    try:
        return uuid.UUID(text)
    except ValueError:
        raise InvalidArgument(field, "must be a UUID") from None


def calendar_date(text: str, field: str) -> date:
    """A request's date field exactly as the contracts write dates, YYYY-MM-DD, or INVALID_ARGUMENT
    naming ``field``. (``date.fromisoformat`` alone also reads 20240101 and 2024-W01-1.)"""
    try:
        if not _CALENDAR_DATE.fullmatch(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidArgument(field, "must be a real date, YYYY-MM-DD") from None
