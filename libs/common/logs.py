"""JSON logs carrying the current trace and span ids."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
from datetime import UTC, datetime

from opentelemetry import trace

from libs.common.pii import mask_in_text


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            entry["trace_id"] = format(ctx.trace_id, "032x")
            entry["span_id"] = format(ctx.span_id, "016x")
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class PersonalDataFilter(logging.Filter):
    """Masks ID-number and mobile-number shapes in a record's message and ``fields``: defence in
    depth, as personal data is never meant to be logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        # A malformed format is left as it is: the handler reports it when it formats the record.
        with contextlib.suppress(TypeError, ValueError):
            record.msg, record.args = mask_in_text(record.getMessage()), None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = _masked(fields)
        return True


# A trace or span id is hex, which can hold a run of digits shaped like a mobile number.
_TRACE_ID = re.compile(r"[0-9a-f]{16}|[0-9a-f]{32}")


def _masked(value: object, key: str = "") -> object:
    if key in ("trace_id", "span_id") and isinstance(value, str) and _TRACE_ID.fullmatch(value):
        return value
    if isinstance(value, str | int) and not isinstance(value, bool):
        masked = mask_in_text(str(value))
        return value if masked == str(value) else masked
    if isinstance(value, dict):
        return {key: _masked(item, key) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(item) for item in value]
    return value


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(PersonalDataFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "faust", "mode"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
