"""Kill the posting process (SIGKILL) before commit, mid file and after commit; a rerun ends
with a ledger identical to a clean run of the same file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from claims_server.db import unit_of_work
from claims_server.models import Account, Claim, JournalEntry, Posting, Remittance, ServiceLine, WorkItem
from claims_server.remittance.services import run_posting, store_835
from tests.conftest import REPO_ROOT
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim

CLAIMS = 7


def _file(prefix: str, trace: str, claims: list[Claim]) -> bytes:
    clps = []
    for i, claim in enumerate(claims):
        lines = []
        for line in claim.service_lines:
            co = line.charge_cents * 3 // 10
            pr = 1000 if i % 3 == 0 else 0
            paid = line.charge_cents - co - pr
            cas = [("CO", "45", co)] + ([("PR", "2", pr)] if pr else [])
            if i == 4:  # one denial in the file
                paid, cas = 0, [("CO", "50", line.charge_cents)]
            lines.append(Svc(line.procedure_code, line.charge_cents, paid, cas, lcn=line.line_control_number))
        total_paid = sum(s.paid for s in lines)
        status = "4" if i == 4 else "1"
        clps.append(
            Clp(claim.patient_control_number, status, claim.total_charge_cents, total_paid, lines=lines)
        )
    clps.append(
        Clp(f"{prefix}-UNKNOWN", "1", 5000, 4000, lines=[Svc("99212", 5000, 4000, [("CO", "45", 1000)])])
    )
    return build_835(clps, trace=trace, plb=[("WO", 700), ("L6", -125)])


def _setup(session, world, factory, prefix: str) -> tuple[int, list[Claim]]:
    claims = [
        make_claim(session, world, f"{prefix}{i}", [("99213", 10000 + 100 * i), ("85025", 4000 + 10 * i)])
        for i in range(CLAIMS)
    ]
    with unit_of_work(factory) as s:
        row, _ = store_835(s, _file(prefix, f"TRACE-{prefix}", claims))
        file_id = row.id
    return file_id, claims


def _normalized_ledger(session, prefix: str, claims: list[Claim]) -> list[tuple]:
    """The journal of one run, with run-specific ids and numbers replaced by positions."""
    session.expire_all()
    claim_index = {c.id: i for i, c in enumerate(claims)}
    line_index = {
        line_id: n for line_id, n in session.execute(select(ServiceLine.id, ServiceLine.line_number))
    }
    rem_ids = set(session.scalars(select(Remittance.id).where(Remittance.trace_number == f"TRACE-{prefix}")))
    rows = session.execute(
        select(
            JournalEntry.event_type,
            JournalEntry.idempotency_key,
            Account.code,
            Posting.amount_cents,
            Posting.claim_id,
            Posting.service_line_id,
            Posting.remittance_id,
        )
        .join(Posting, Posting.journal_entry_id == JournalEntry.id)
        .join(Account, Account.id == Posting.account_id)
        .where((JournalEntry.remittance_id.in_(rem_ids)) | (JournalEntry.claim_id.in_(list(claim_index))))
    )
    out = []
    for event, key, account, cents, claim_id, line_id, rem_id in rows:
        key = key.replace(f"TRACE-{prefix}", "TRACE")
        for c in claims:
            key = key.replace(c.public_id, f"claim{claim_index[c.id]}")
        out.append(
            (
                event.value,
                key,
                account,
                cents,
                claim_index.get(claim_id),
                line_index.get(line_id),
                rem_id in rem_ids,
            )
        )
    return sorted(out, key=repr)


def _items(session, claims: list[Claim]) -> list[tuple[str, list[str]]]:
    ids = [c.id for c in claims]
    rows = session.scalars(select(WorkItem).where(WorkItem.claim_id.in_(ids) | WorkItem.claim_id.is_(None)))
    return sorted((w.queue.value, sorted(w.reason_codes)) for w in rows)


def _run_child(database_url: str, file_id: int, point: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.integration.remittance.kill_runner",
            database_url,
            str(file_id),
            point,
            "2",
        ],
        cwd=REPO_ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize("point", ["chunk", "posted", "before_commit", "after_commit"])
def test_kill_then_rerun_equals_clean_run(session, world, factory, database_url, point):
    clean_id, clean_claims = _setup(session, world, factory, "CLEAN")
    clean = _run_child(database_url, clean_id, "none")
    assert clean.returncode == 0 and clean.stdout.strip() == "posted", clean.stderr
    clean_ledger = _normalized_ledger(session, "CLEAN", clean_claims)
    assert clean_ledger, "the clean run posted nothing"

    file_id, claims = _setup(session, world, factory, "KILL")
    killed = _run_child(database_url, file_id, point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    session.expire_all()
    entries = session.scalar(
        select(func.count())
        .select_from(JournalEntry)
        .where(JournalEntry.claim_id.in_([c.id for c in claims]))
    )
    assert (entries > 0) == (point == "after_commit")  # all or nothing

    rerun = run_posting(factory, file_id)
    assert rerun.status == ("duplicate" if point == "after_commit" else "posted"), rerun.error
    assert _normalized_ledger(session, "KILL", claims) == clean_ledger
    clean_items = [(q, codes) for q, codes in _items(session, clean_claims) if q != "unmatched"]
    kill_items = [(q, codes) for q, codes in _items(session, claims) if q != "unmatched"]
    assert kill_items == clean_items
    assert (
        session.scalar(
            select(func.count()).select_from(Remittance).where(Remittance.trace_number == "TRACE-KILL")
        )
        == 1
    )
