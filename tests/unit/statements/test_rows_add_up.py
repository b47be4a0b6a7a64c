"""Property: for generated accounts, every row adds up and the rows sum to the amount due.

Each generated line is consistent the way the ledger makes it (charge - insurance paid -
insurer adjustments - patient paid - patient write-offs - insurance still open = the
patient's balance), with claims waiting on insurance, PR-45 with and without balance
billing, overpaid lines and payments on account. The HTML and the PDF (read back with
pdftotext) print the same "You owe" amounts as the statement.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statements import DunningStage, LedgerLine, ResponsibilityPart, build_statement, render_html, render_pdf
from tests.unit.statements.support import AS_OF, statement_input

DUE = AS_OF + timedelta(days=21)
CODES = ("99213", "99214", "36415", "G0008", "0001U")


@st.composite
def ledger_line(draw: st.DrawFn, index: int) -> LedgerLine:
    billed = draw(st.integers(1000, 50000))
    paid = draw(st.integers(0, billed))
    adjusted = draw(st.integers(0, billed - paid))
    rest = billed - paid - adjusted  # the patient's share plus what an insurer still has open
    open_part = draw(st.sampled_from([0, 0, rest // 2]))
    share = rest - open_part
    parts: list[ResponsibilityPart] = []
    above = draw(st.integers(0, share))
    if above:
        parts.append(ResponsibilityPart("PR", "45", above))
    if share - above:
        parts.append(
            ResponsibilityPart("PR", draw(st.sampled_from(["1", "2", "3", "96", "ZZ9"])), share - above)
        )
    patient_paid = draw(st.integers(0, share + 2000))  # may overpay the line (a credit on it)
    written_off = draw(st.integers(0, max(0, share - patient_paid)))
    balance = share - patient_paid - written_off
    claim = f"CLAIM{index % 3}"
    since = AS_OF - timedelta(days=draw(st.integers(0, 200)))
    return LedgerLine(
        claim_ref=claim,
        line_ref=f"{claim}:{index}",
        service_date=since,
        provider_name="Jordan Rivera, MD",
        procedure_code=draw(st.sampled_from(CODES)),
        billed_cents=billed,
        insurance_paid_cents=paid,
        adjustments_cents=adjusted,
        balance_cents=balance,
        responsible_since=since,
        responsibility=tuple(parts),
        patient_paid_cents=patient_paid,
        patient_adjusted_cents=written_off,
        insurance_pending_cents=open_part or draw(st.sampled_from([0, 0, 0, 500])),
        insurance_open_cents=open_part,
        balance_billing=draw(st.booleans()),
    )


@st.composite
def account(draw: st.DrawFn):
    n = draw(st.integers(1, 6))
    lines = [draw(ledger_line(i)) for i in range(n)]
    credit = -draw(st.sampled_from([0, 0, 500, 2500, 100000]))
    return statement_input(*lines, credit=credit)


def _owe_cells(html: str) -> list[int]:
    return [_cents(c) for c in re.findall(r"<td[^>]*data-owe>([^<]*)</td>", html)]


def _cents(text: str) -> int:
    sign = -1 if "-" in text else 1
    return sign * int(re.sub(r"[^0-9]", "", text))


def _check(statement) -> None:
    rows = statement.lines()
    for row in rows:
        assert row.balance_cents == (
            row.billed_cents
            - row.insurance_paid_cents
            - row.adjustments_cents
            - row.patient_paid_cents
            - row.not_due_cents
        )
        assert not (row.pending_insurance and row.balance_cents > 0)  # waiting: shown, not due
    total = sum(row.balance_cents for row in rows) + statement.unapplied_credit_cents
    assert total == statement.balance_cents - statement.pending_insurance_cents
    assert statement.amount_due_cents == max(0, total)
    assert statement.unapplied_credit_cents <= 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(account())
def test_rows_add_up_to_the_amount_due(data) -> None:
    statement = build_statement(data, stage=DunningStage.FIRST, step=1, due_date=DUE)
    _check(statement)
    held_lines = {ln.line_ref for ln in data.lines if not ln.balance_billing}
    for row in statement.lines():
        if row.line_ref in held_lines:
            assert "PR-45" not in {r.code for r in row.reasons}  # never told they owe it
    assert _owe_cells(render_html(statement)) == [row.balance_cents for row in statement.lines()]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(account())
def test_pdf_prints_the_same_rows_as_the_html(data) -> None:
    if shutil.which("pdftotext") is None:
        return
    statement = build_statement(data, stage=DunningStage.FIRST, step=1, due_date=DUE)
    text = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=render_pdf(statement), capture_output=True, check=True
    ).stdout.decode()
    printed = [
        _cents(re.findall(r"-?\$[\d,]+\.\d{2}", row)[-1])
        for row in text.splitlines()
        if re.match(r"^\s*\d{2}/\d{2}/\d{4}\s+\S", row) and "$" in row
    ]
    assert printed == [row.balance_cents for row in statement.lines()]
    assert printed == _owe_cells(render_html(statement))
