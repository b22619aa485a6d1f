"""Errors meant for users: the CLI prints their message without a traceback."""


class PixiuError(Exception):
    """An error whose message is shown to the user as is; it says what went wrong and how to fix it."""


class ConfigError(PixiuError):
    """Invalid configuration, raised before any model work, listing every problem at once."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems))


class BadRecord(PixiuError):
    """A data record a formatter cannot use; the message says which field is wrong and why."""


class DataError(PixiuError):
    """A data file that cannot be read: missing, empty, or malformed at a named line."""
