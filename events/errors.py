"""Errors of the domain; every one is safe to show a user."""


class DomainError(Exception):
    """Raised when a domain rule or a value of the domain is violated."""


class UnknownPartyError(DomainError):
    """Raised when a name matches no party slug or alias; carries suggestions."""

    def __init__(self, name: str, suggestions: list[str] | None = None) -> None:
        self.name = name
        self.suggestions = list(suggestions or [])
        hint = f" Did you mean: {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"Unknown party {name!r}.{hint}")


class InvalidTransitionError(DomainError):
    """Raised when a deal status change is not allowed from the current status."""


class QuantityParseError(DomainError):
    """Raised when a quantity as written (\"1.2 GW\", \"$20 billion\") cannot be read."""


class UpcastError(DomainError):
    """Raised when a stored payload has a schema version no upcaster can bring forward."""
