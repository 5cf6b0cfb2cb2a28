"""Errors a service raises for its callers; the gRPC layer maps each to one status code.

These carry no domain rules: services raise them from their own domain code.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the errors a caller can act on."""


class InvalidArgument(ServiceError):
    """The request is malformed: each violation names a field (dotted path) and what is wrong."""

    def __init__(self, field: str, description: str, *more: tuple[str, str]) -> None:
        self.violations = [(field, description), *more]
        super().__init__("; ".join(f"{f}: {d}" for f, d in self.violations))
        self.field = field
        self.description = description


class NotFound(ServiceError):
    """The named resource does not exist (or the caller may not know it exists)."""


class AlreadyExists(ServiceError):
    """Creating something that already exists."""


class FailedPrecondition(ServiceError):
    """The system is not in a state where this can happen."""


class Aborted(ServiceError):
    """A concurrency conflict; the caller may retry the whole operation."""


class PermissionDenied(ServiceError):
    """The authenticated caller may not do this."""


class Unauthenticated(ServiceError):
    """No valid credentials."""


class Unavailable(ServiceError):
    """A dependency (the database, Kafka) cannot be reached now; the same call may succeed later."""


class PermanentEventError(Exception):
    """An event that can never be processed (malformed, undecodable): retrying is pointless."""
