"""An 835 that is not ours, for the foreign-remittance tests (API, workspace, browser)."""

from __future__ import annotations

from tests.integration.remittance.support import TRN03, Clp, Svc, build_835


def foreign_835(trace: str) -> bytes:
    """A payer we do not know (TRN03 and N1*PR) paying a payee that is not us, two claims not ours:
    40.00 + 30.00 = BPR02 70.00."""
    content = build_835(
        [
            Clp("ELSEWHERE01", "1", 5000, 4000, 0, lines=[Svc("99212", 5000, 4000, [("CO", "45", 1000)])]),
            Clp("ELSEWHERE02", "1", 4000, 3000, 0, lines=[Svc("99213", 4000, 3000, [("CO", "45", 1000)])]),
        ],
        trace=trace,
    )
    return (
        content.replace(f"*{TRN03['DEMOACME']}".encode(), b"*1999999999")
        .replace(b"N1*PR*DEMO PAYER", b"N1*PR*FAR AWAY HEALTH PLAN*XV*FARAWAY01")
        .replace(b"N1*PE*DEMO PRACTICE*XX*1234567893", b"N1*PE*SOMEONE ELSE CLINIC*XX*1999999976")
    )
