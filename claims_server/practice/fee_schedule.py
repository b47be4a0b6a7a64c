"""The practice's fee schedule: its standard charge per procedure code (and modifier).

Charge entry and charge import fill in a line's charge from here when the biller leaves
it empty. One row per (practice, code, modifier); modifier '' is the code's charge with
no modifier or with a modifier that has no row of its own (e.g. 99213 and 99213-25 are
usually billed at the same charge, while 26/TC split a global charge).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.models import FeeScheduleEntry

#: (procedure, modifiers) -> charge in cents, or None when the schedule has no charge for it.
FeeLookup = Callable[[str, Sequence[str]], "int | None"]


def fee_lookup(session: Session, practice_id: int) -> FeeLookup:
    """Load the practice's schedule once; the function returned answers from memory.

    The charge is the row of the first modifier that has one, else the code's '' row,
    else None (the biller must key the charge).
    """
    rows = session.execute(
        select(
            FeeScheduleEntry.procedure_code, FeeScheduleEntry.modifier, FeeScheduleEntry.charge_cents
        ).where(FeeScheduleEntry.practice_id == practice_id)
    ).all()
    table = {(code, modifier): cents for code, modifier, cents in rows}

    def lookup(procedure: str, modifiers: Sequence[str] = ()) -> int | None:
        for modifier in modifiers:
            cents = table.get((procedure, modifier))
            if cents is not None:
                return cents
        return table.get((procedure, ""))

    return lookup
