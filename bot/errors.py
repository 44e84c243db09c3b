"""Errors of the bot's surfaces; a UserInputError's message is safe to show the user."""


class UserInputError(Exception):
    """Raised when a user's command, option or value cannot be used; says what would work."""


class PermissionDeniedError(UserInputError):
    """Raised when a user lacks the role a command needs; nothing was written."""
