"""Errors of the store; messages are safe to show a user."""


class StoreError(Exception):
    """Raised when the event store cannot do what was asked; the base of the store's errors."""


class ConcurrencyError(StoreError):
    """Raised when a stream is not at the version the caller expected; nothing was written."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{stream_id} changed meanwhile: expected version {expected}, it is at {actual}. "
            "Nothing was written; reload and try again."
        )


class IdempotencyKeyReuseError(StoreError):
    """Raised when an idempotency key already stored is offered with a different event."""


class UnknownStreamError(StoreError):
    """Raised when an event refers to a deal or event that the log does not hold."""


class InvalidEventError(StoreError):
    """Raised when an event cannot be appended as it stands (bad order, bad reference, bad time)."""


class MigrationError(StoreError):
    """Raised when the database was written by a newer computewatch or a migration failed."""


class DatabaseLockedError(StoreError):
    """Raised when another process holds the database file for writing."""
