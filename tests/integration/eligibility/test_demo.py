"""The demo's eligibility step on the seeded practice (folder link, simulated payer)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from claims_server.eligibility.demo import PATIENTS, run_eligibility_day
from claims_server.models import EdiFile, EdiFileKind, EligibilityCheck


def test_demo_checks_tomorrows_patients_once(session, factory, ids, tmp_path):
    day = run_eligibility_day(factory, tmp_path, today=date.today())
    assert day.checks == PATIENTS and len(day.files) == 1 and day.statuses == {"active": PATIENTS}
    assert "answers (271): 4 active" in day.lines()
    again = run_eligibility_day(factory, tmp_path, today=date.today())
    assert again.checks == 0 and again.files == []
    assert session.scalar(select(func.count(EligibilityCheck.id))) == PATIENTS
    kinds = session.scalars(select(EdiFile.kind)).all()
    assert sorted(kinds) == [EdiFileKind.ELIGIBILITY_270, EdiFileKind.ELIGIBILITY_271]
