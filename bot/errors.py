"""Errors of the bot's surfaces; a UserInputError's message is safe to show the user."""


class UserInputError(Exception):
    """Raised when a user's command, option or value cannot be used; says what would work."""


class PermissionDeniedError(UserInputError):
    """Raised when a user lacks the role a command needs; nothing was written."""


def shown(text: str, limit: int = 100) -> str:
    """User text as a message may repeat it: as typed when printable, else escaped (control
    characters, lone surrogates), and cut at `limit` characters."""
    # Lone surrogates are not printable either; "é" stays as typed.
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    return text if len(text) <= limit else text[:limit] + "…"
