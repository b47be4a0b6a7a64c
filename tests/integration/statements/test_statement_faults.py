"""Issue 18, statements: one test per fault, against the real ledger, hand-computed cents.

- rows add up: a visit's row shows the patient's payments (several, partial, a credit taken
  before the visit was adjudicated) and the payer's reversal counts once; each row's
  balance = charge - insurance paid - adjustments - patient paid - not due, and the rows
  plus the credit left sum to the amount due, on the PDF and the HTML alike;
- PR-45 is explained as what it is, and without balance billing it never reaches the
  patient: held off the statement, a work item, a run warning;
- at most one statement per patient per cycle: a second run (service and CLI) the same
  day issues nothing and says so;
- service names from the code sets, the code printed once.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from claims_server.cli import main
from claims_server.models import PaymentMethod, Statement, WorkItem, WorkQueue
from claims_server.models.payments import PaymentSource
from claims_server.payments.services import record_patient_payment
from claims_server.remittance.services import receive_and_post
from claims_server.security.principal import acting_as, system_principal
from claims_server.statements.services import (
    build_statement_input,
    run_progress,
    run_statements,
    statement_html,
    statement_pdf,
)
from statements import CycleRules, DunningStage, build_statement, render_html, render_pdf
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim, seed_world

AS_OF = date.today() + timedelta(days=1)
RULES = CycleRules()


@pytest.fixture
def factory(app):
    from claims_server.app import state

    return state(app).session_factory


def _post(factory, clps: list[Clp], trace: str, **kw) -> None:
    report = receive_and_post(factory, build_835(clps, trace=trace, **kw))
    assert report.status == "posted", report.error


def _pay(session, patient_id: int, cents: int, key: str, *, allow_credit: bool = False) -> None:
    with acting_as(system_principal("test:statements")):
        record_patient_payment(
            session,
            patient_id=patient_id,
            amount_cents=cents,
            source=PaymentSource.FRONT_DESK,
            method=PaymentMethod.CASH,
            idempotency_key=key,
            allow_credit=allow_credit,
        )
        session.commit()


def _run(session, as_of=AS_OF, rules=RULES):
    with acting_as(system_principal("test:statements")):
        run = run_statements(session, as_of, rules=rules)
        session.commit()
    return run


def _owe_cells(html: str) -> list[str]:
    return re.findall(r"<td[^>]*data-owe>([^<]*)</td>", html)


def _cents(text: str) -> int:
    sign = -1 if text.strip().startswith("-") else 1
    return sign * int(re.sub(r"[^0-9]", "", text))


@pytest.fixture
def world(app, session):
    return seed_world(session)


@pytest.fixture
def paid_visits(session, world, factory):
    """Visit A, three payments (one leaving a credit), then visit B adjudicated, reversed, corrected.

    A: 99213 100.00: paid 60.00, CO-45 10.00, PR-1 20.00, PR-3 10.00 -> the patient owes 30.00.
    Payments 10.00 and 5.00 (partial, on A), then 25.00 with a credit: 15.00 pays A off and
    10.00 stays on account (taken at the front desk before visit B was adjudicated).
    B: 99212 80.00: paid 40.00, CO-45 10.00, PR-3 20.00, PR-2 10.00 (owes 30.00); then the payer
    reverses it (CLP02 22) and corrects it: paid 45.00, CO-45 10.00, PR-2 25.00 (owes 25.00).
    The statement: A is settled (not shown); B's row is 80.00 - 45.00 - 10.00 - 10.00 (the
    credit, shown as paid by the patient on the visit it pays) = 15.00, the amount due.
    """
    a = make_claim(session, world, "PCN-SF-A", [("99213", 10000)])
    b = make_claim(session, world, "PCN-SF-B", [("99212", 8000)])
    a_lcn, b_lcn = a.service_lines[0].line_control_number, b.service_lines[0].line_control_number
    _post(
        factory,
        [
            Clp(
                "PCN-SF-A",
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
                        lcn=a_lcn,
                    )
                ],
            )
        ],
        "SF-A",
    )
    patient_id = a.patient_id
    _pay(session, patient_id, 1000, "sf-pay-1")
    _pay(session, patient_id, 500, "sf-pay-2")
    _pay(session, patient_id, 2500, "sf-pay-3", allow_credit=True)
    original = Clp(
        "PCN-SF-B",
        "1",
        8000,
        4000,
        3000,
        payer_claim_number="PCCN-SF-B",
        lines=[
            Svc("99212", 8000, 4000, [("CO", "45", 1000), ("PR", "3", 2000), ("PR", "2", 1000)], lcn=b_lcn)
        ],
    )
    _post(factory, [original], "SF-B1")
    reversal = Clp(
        "PCN-SF-B",
        "22",
        -8000,
        -4000,
        -3000,
        payer_claim_number="PCCN-SF-B",
        lines=[
            Svc(
                "99212",
                -8000,
                -4000,
                [("CO", "45", -1000), ("PR", "3", -2000), ("PR", "2", -1000)],
                lcn=b_lcn,
            )
        ],
    )
    corrected = Clp(
        "PCN-SF-B",
        "1",
        8000,
        4500,
        2500,
        payer_claim_number="PCCN-SF-B",
        lines=[Svc("99212", 8000, 4500, [("CO", "45", 1000), ("PR", "2", 2500)], lcn=b_lcn)],
    )
    _post(factory, [reversal, corrected], "SF-B2")
    return a, b


def _assert_adds_up(statement) -> None:
    for line in statement.lines():
        assert line.balance_cents == (
            line.billed_cents
            - line.insurance_paid_cents
            - line.adjustments_cents
            - line.patient_paid_cents
            - line.not_due_cents
        ), line
    total = sum(line.balance_cents for line in statement.lines()) + statement.unapplied_credit_cents
    assert total == statement.balance_cents - statement.pending_insurance_cents
    assert statement.amount_due_cents == max(0, total)


def test_payments_show_on_the_visit_they_paid_and_rows_add_up(session, paid_visits) -> None:
    _a, b = paid_visits
    data = build_statement_input(session, b.patient_id, AS_OF)
    statement = build_statement(data, stage=DunningStage.FIRST, step=1, due_date=AS_OF + timedelta(days=21))
    # The fault: the row said "You owe 25.00" while the 10.00 credit paying it sat elsewhere.
    assert [line.balance_cents for line in statement.lines()] == [statement.amount_due_cents] == [1500]
    _assert_adds_up(statement)
    (row,) = statement.lines()
    assert row.claim_ref == b.public_id
    assert (
        row.billed_cents,
        row.insurance_paid_cents,  # the corrected adjudication only: the reversed one counts once
        row.adjustments_cents,
        row.patient_paid_cents,  # the credit from the front desk, on the visit it pays
        row.not_due_cents,
        row.balance_cents,
    ) == (8000, 4500, 1000, 1000, 0, 1500)
    assert [(r.code, r.amount_cents) for r in row.reasons] == [("PR-2", 2500)]
    assert (statement.amount_due_cents, statement.unapplied_credit_cents) == (1500, 0)

    run = _run(session)
    assert run.issued == 1
    stored = session.scalar(select(Statement).where(Statement.patient_id == b.patient_id))
    assert stored.balance_cents == 1500
    assert [(ln.patient_paid_cents, ln.balance_cents) for ln in stored.lines] == [(1000, 1500)]
    html = statement_html(stored)
    assert [_cents(c) for c in _owe_cells(html)] == [1500]
    assert "$15.00" in re.search(r"data-total>([^<]*)<", html).group(1)


def test_pr45_without_balance_billing_never_reaches_the_patient(session, world, factory) -> None:
    """99213 100.00: paid 60.00, PR-45 15.00, PR-2 25.00. Default: the patient is billed 25.00 only."""
    claim = make_claim(session, world, "PCN-SF-45", [("99213", 10000)])
    lcn = claim.service_lines[0].line_control_number
    _post(
        factory,
        [
            Clp(
                "PCN-SF-45",
                "1",
                10000,
                6000,
                4000,
                lines=[Svc("99213", 10000, 6000, [("PR", "45", 1500), ("PR", "2", 2500)], lcn=lcn)],
            )
        ],
        "SF-45",
    )
    run = _run(session)
    assert run.issued == 1
    stored = session.scalar(select(Statement).where(Statement.patient_id == claim.patient_id))
    html = statement_html(stored)
    assert "discount" not in html and "you do not owe it" not in html  # the fault: CO-45's words
    assert stored.balance_cents == 2500  # the PR-45 15.00 is not billed
    progress = run_progress(run)
    assert progress["warnings"] == [
        {"level": "warning", "rule": "pr45_not_billable", "line": f"{claim.public_id}:1"}
    ]
    assert any("PR-45" in n for n in progress["notices"])
    (line,) = stored.lines
    assert (line.charge_cents, line.insurance_paid_cents, line.adjustments_cents, line.balance_cents) == (
        10000,
        6000,
        1500,  # the held PR-45 is not the patient's: shown with the adjustments
        2500,
    )
    assert "Above the allowed amount" not in html and "PR-45" not in html
    assert "Coinsurance $25.00" in html
    items = session.scalars(select(WorkItem).where(WorkItem.reason_codes.is_not(None))).all()
    flagged = [i for i in items if i.reason_codes == ["PR-45"]]
    assert len(flagged) == 1
    assert (flagged[0].queue, flagged[0].claim_id, flagged[0].patient_id) == (
        WorkQueue.PATIENT_BALANCE,
        claim.id,
        claim.patient_id,
    )
    # A later run flags it again in its warnings, but opens no second work item.
    _run(session, AS_OF + timedelta(days=30))
    assert (
        session.scalar(
            select(func.count())
            .select_from(WorkItem)
            .where(WorkItem.dedupe_key == f"statement_pr45:{claim.public_id}:1")
        )
        == 1
    )

    # A plan that allows balance billing (out of network): the patient owes it, and is told why.
    billing = CycleRules(balance_billing_payers=frozenset({"DEMOACME"}))
    data = build_statement_input(session, claim.patient_id, AS_OF)
    assert data.lines[0].balance_billing is False  # the service reads it from the rules
    from claims_server.statements.services import build_statement_inputs

    data = build_statement_inputs(
        session, [claim.patient_id], AS_OF, balance_billing_payers=billing.balance_billing_payers
    )[claim.patient_id]
    statement = build_statement(data, stage=DunningStage.FIRST, step=1, due_date=AS_OF + timedelta(days=21))
    _assert_adds_up(statement)
    assert statement.amount_due_cents == 4000
    reasons = {r.code: (r.label, r.explanation) for r in statement.lines()[0].reasons}
    assert reasons["PR-45"][0] == "Above the allowed amount"
    assert "allows" in reasons["PR-45"][1] and "do not owe" not in reasons["PR-45"][1]


@pytest.fixture
def billed(session, world, factory):
    claim = make_claim(session, world, "PCN-SF-C", [("99212", 10000)])
    lcn = claim.service_lines[0].line_control_number
    _post(
        factory,
        [
            Clp(
                "PCN-SF-C",
                "1",
                10000,
                6000,
                3000,
                lines=[Svc("99212", 10000, 6000, [("CO", "45", 1000), ("PR", "1", 3000)], lcn=lcn)],
            )
        ],
        "SF-C",
    )
    return claim


def test_a_second_run_on_the_same_day_issues_nothing_and_says_so(session, billed) -> None:
    first = _run(session)
    second = _run(session)
    assert (first.issued, second.issued) == (1, 0)
    assert second.skip_reasons == {"already_this_cycle": 1}
    assert run_progress(second)["notices"] == [
        "1 patient already has a statement this cycle; nothing new was issued to them."
    ]
    # A back-dated run inside the cycle issues nothing either; one after it does.
    assert _run(session, AS_OF - timedelta(days=5)).issued == 0
    assert _run(session, AS_OF + timedelta(days=RULES.min_days_between)).issued == 1
    assert session.scalar(select(func.count()).select_from(Statement)) == 2


def test_the_cli_second_run_on_the_same_day_issues_nothing(database_url, session, billed, tmp_path) -> None:
    env = {"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "i")}
    runner = CliRunner()
    day = AS_OF.isoformat()
    first = runner.invoke(main, ["statements", "run", "--as-of", day, "--json"], env=env)
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["issued"] == 1
    second = runner.invoke(main, ["statements", "run", "--as-of", day], env=env)
    assert second.exit_code == 0, second.output
    assert "0 issued" in second.output
    assert "1 patient already has a statement this cycle" in second.output
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Statement)) == 1


def test_service_names_come_from_the_code_sets_and_name_the_code_once(session, world, factory) -> None:
    """99212 (CPT, no licensed text here) reads "Office visit"; G0008 (HCPCS) its CMS words."""
    claim = make_claim(session, world, "PCN-SF-D", [("99212", 8000), ("G0008", 3000)])
    l1, l2 = (line.line_control_number for line in claim.service_lines)
    _post(
        factory,
        [
            Clp(
                "PCN-SF-D",
                "1",
                11000,
                6000,
                3000,
                lines=[
                    Svc("99212", 8000, 4000, [("CO", "45", 2000), ("PR", "2", 2000)], lcn=l1),
                    Svc("G0008", 3000, 2000, [("PR", "2", 1000)], lcn=l2),
                ],
            )
        ],
        "SF-D",
    )
    assert _run(session).issued == 1
    stored = session.scalar(select(Statement).where(Statement.patient_id == claim.patient_id))
    assert [line.description for line in stored.lines] == [
        "99212 Office visit",
        "G0008 Administration of influenza virus vaccine",
    ]
    html = statement_html(stored)
    assert "Procedure 99212" not in html and "99212 99212" not in html and "99212 Office visit" in html
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", "-layout", "-", "-"], input=statement_pdf(stored), capture_output=True, check=True
        ).stdout.decode()
        assert "99212 Office visit" in text and "Procedure 99212" not in text


def _pdf_rows(pdf: bytes, tmp: Path) -> list[int]:
    """The "You owe" amounts of the PDF's service rows (the last amount of each dated row)."""
    text = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    out = []
    for row in text.splitlines():
        if re.match(r"^\s*\d{2}/\d{2}/\d{4}\s+\S", row) and "$" in row:
            out.append(_cents(re.findall(r"-?\$[\d,]+\.\d{2}", row)[-1]))
    return out


def test_pdf_and_html_show_the_same_rows(session, paid_visits, tmp_path) -> None:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    _a, b = paid_visits
    data = build_statement_input(session, b.patient_id, AS_OF)
    statement = build_statement(data, stage=DunningStage.FIRST, step=1, due_date=AS_OF + timedelta(days=21))
    html_rows = [_cents(c) for c in _owe_cells(render_html(statement))]
    assert html_rows == _pdf_rows(render_pdf(statement), tmp_path) == [1500]


def test_the_api_second_run_on_the_same_day_issues_nothing(api_client, session, billed) -> None:
    supervisor = api_client("billing_supervisor")
    first = supervisor.post("/api/v1/statements/runs", json={"as_of": AS_OF.isoformat()})
    assert first.status_code == 202, first.get_json()
    assert (first.get_json()["issued"], first.get_json()["notices"]) == (1, [])
    second = supervisor.post("/api/v1/statements/runs", json={"as_of": AS_OF.isoformat()})
    assert second.status_code == 202
    body = second.get_json()
    assert (body["issued"], body["skip_reasons"]) == (0, {"already_this_cycle": 1})
    assert body["notices"] == [
        "1 patient already has a statement this cycle; nothing new was issued to them."
    ]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Statement)) == 1


def test_two_runs_at_the_same_moment_issue_one_statement(session, factory, billed) -> None:
    """The scheduler's run and a biller's run together: each patient is locked while a run decides."""
    import threading

    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def run_once() -> None:
        try:
            with factory() as own, acting_as(system_principal("test:statements")):
                barrier.wait(timeout=30)
                run = run_statements(own, AS_OF, rules=RULES)
                own.commit()
                results.append(run.issued)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run_once) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(results) == [0, 1]
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Statement)) == 1
