"""Statement runs against the real ledger: a posted 835 leaves the patient a balance, the run bills it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select, text

from claims_server.models import AuditEvent, Statement, StatementState, WorkItem, WorkQueue
from claims_server.models.statements import StatementHold, StatementRunState
from claims_server.remittance.services import receive_and_post
from claims_server.security.principal import acting_as, system_principal
from claims_server.statements.services import (
    build_statement_input,
    release_hold,
    run_statements,
    statement_html,
    statement_pdf,
)
from statements import CycleRules
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim, seed_world

AS_OF = date.today() + timedelta(days=1)


@pytest.fixture
def billed(app, session):
    """One claim: 99213 100.00 paid 60.00, CO-45 10.00, PR-1 20.00 + PR-3 10.00 (patient owes 30.00)."""
    from claims_server.app import state

    world = seed_world(session)
    claim = make_claim(session, world, "PCN-ST1", [("99213", 10000)])
    lcn = claim.service_lines[0].line_control_number
    content = build_835(
        [
            Clp(
                "PCN-ST1",
                "1",
                10000,
                6000,
                3000,
                lines=[
                    Svc(
                        "99213",
                        10000,
                        6000,
                        [("CO", "45", 1000), ("PR", "1", 2000), ("PR", "3", 1000)],
                        lcn=lcn,
                    )
                ],
            )
        ]
    )
    assert receive_and_post(state(app).session_factory, content).status == "posted"
    return claim


def _run(session, as_of, rules=None):
    with acting_as(system_principal("test:statements")):
        run = run_statements(session, as_of, rules=rules or CycleRules())
        session.commit()
    return run


def test_statement_input_from_the_ledger(session, billed) -> None:
    data = build_statement_input(session, billed.patient_id, AS_OF)
    (line,) = data.lines
    assert (line.billed_cents, line.insurance_paid_cents, line.adjustments_cents, line.balance_cents) == (
        10000,
        6000,
        1000,
        3000,
    )
    assert [(p.reason, p.amount_cents) for p in line.responsibility] == [("1", 2000), ("3", 1000)]
    assert line.insurance_pending_cents == 0 and line.procedure_code == "99213"


def test_run_issues_an_audited_statement_with_encrypted_documents(session, billed) -> None:
    run = _run(session, AS_OF)
    assert (run.state, run.total, run.done, run.issued) == (StatementRunState.DONE, 1, 1, 1)
    statement = session.scalar(select(Statement))
    assert (statement.balance_cents, statement.aging_total_cents(), statement.dunning_step) == (3000, 3000, 1)
    # The PR transfer is dated BPR16 (2026-01-10): the patient has owed it since then.
    age = (AS_OF - date(2026, 1, 10)).days
    bucket = "over_120_cents" if age > 120 else "days_91_120_cents" if age > 90 else None
    if bucket is not None:
        assert getattr(statement, bucket) == 3000
    assert statement.state is StatementState.ISSUED and len(statement.lines) == 1
    assert "Deductible" in statement.lines[0].reason_text and "Copay" in statement.lines[0].reason_text
    pdf = statement_pdf(statement)
    assert pdf.startswith(b"%PDF")
    stored = session.execute(
        text("SELECT pdf_content FROM statements WHERE id = :i"), {"i": statement.id}
    ).scalar()
    assert bytes(stored) != pdf and b"%PDF" not in bytes(stored)
    html = statement_html(statement, "https://pay.example.org/l/tok")
    assert "$30.00" in html and 'href="https://pay.example.org/l/tok"' in html
    events = {
        e.event_type
        for e in session.scalars(select(AuditEvent).where(AuditEvent.patient_id == billed.patient_id))
    }
    assert {"statement.build", "statement.issue"} <= events


def test_cycle_rules_across_runs_to_a_collections_hold(session, billed) -> None:
    rules = CycleRules(min_days_between=28, max_statements=3, reminders=1)
    _run(session, AS_OF, rules)
    too_soon = _run(session, AS_OF + timedelta(days=10), rules)
    assert (too_soon.issued, too_soon.skip_reasons) == (0, {"already_this_cycle": 1})
    second = _run(session, AS_OF + timedelta(days=30), rules)
    third = _run(session, AS_OF + timedelta(days=60), rules)
    assert (second.issued, third.issued) == (1, 1)
    stages = session.execute(
        select(Statement.dunning_step, Statement.dunning_stage).order_by(Statement.id)
    ).all()
    assert [tuple(r) for r in stages] == [(1, 0), (2, 1), (3, 2)]  # first, reminder, final notice
    fourth = _run(session, AS_OF + timedelta(days=90), rules)
    assert (fourth.issued, fourth.held) == (0, 1)
    hold = session.scalar(select(StatementHold))
    item = session.get(WorkItem, hold.work_item_id)
    assert item.queue is WorkQueue.PATIENT_BALANCE and hold.balance_cents == 3000
    on_hold = _run(session, AS_OF + timedelta(days=120), rules)
    assert on_hold.skip_reasons == {"on_hold": 1}
    with acting_as(system_principal("test:statements")):
        release_hold(session, hold.public_id)
        session.commit()
    assert _run(session, AS_OF + timedelta(days=150), rules).held == 1  # still unpaid: back to a hold


def test_minimum_balance_skips(session, billed) -> None:
    run = _run(session, AS_OF, CycleRules(min_balance_cents=5000))
    assert (run.issued, run.skip_reasons) == (0, {"below_minimum": 1})
