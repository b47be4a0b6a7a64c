"""Structured findings: what is wrong, and exactly where, in X12 coordinates.

A finding names what a clearinghouse would quote back: the segment id, its position in
the transaction set (ST = 1), the loop, the element reference (e.g. ``CLM01`` or
``SV101-2``) and the offending value. ``ik3``/``ik4`` carry the 999 syntax error codes
when the finding maps onto an implementation acknowledgment.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    code: str
    message: str
    segment: str | None = None
    segment_position: int | None = None  # within the transaction set; ST is 1
    loop: str | None = None
    element: str | None = None  # e.g. "CLM01", "SV101-2"
    value: str | None = None
    file_ordinal: int | None = None  # 1-based segment number in the file
    transaction_set: str | None = None  # ST02 control number the finding belongs to
    ik3: str | None = None  # 999 IK304 segment syntax error code
    ik4: str | None = None  # 999 IK403 element syntax error code

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def to_dict(self) -> dict[str, object]:
        """Every field, for reports that carry the 999 codes and file ordinals too."""
        data = asdict(self)
        data["severity"] = self.severity.value
        return data

    def to_json_dict(self) -> dict[str, object]:
        """The public JSON shape of a finding (the ``edi`` CLI contract)."""
        return {
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "segment": self.segment,
            "segment_position": self.segment_position,
            "loop": self.loop,
            "element": self.element,
            "value": self.value,
        }


def error(code: str, message: str, **where: object) -> Finding:
    return Finding(Severity.ERROR, code, message, **where)  # type: ignore[arg-type]


def warning(code: str, message: str, **where: object) -> Finding:
    return Finding(Severity.WARNING, code, message, **where)  # type: ignore[arg-type]
