"""The structured error a code-set loader raises when a user's file cannot be read."""

from __future__ import annotations


class CodeSetError(Exception):
    """A code-set file is unreadable or not in the expected layout.

    Names the file, the 1-based line and the rule that failed, never a traceback.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, rule: str) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.rule = rule

    def to_dict(self) -> dict[str, object]:
        return {"message": self.message, "file": self.file, "line": self.line, "rule": self.rule}
