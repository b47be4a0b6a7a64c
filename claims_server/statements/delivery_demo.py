"""The end of ``claims-server demo``: the patients' statements, mailed as a print batch, one emailed.

After the remittances are posted the patients owe their deductibles, copays and
coinsurance. This step runs the statement cycle as of today (the payers' 835s pay on the
day they are produced, BPR16 = DTM*405, so today's remittances are on the books), emails
one statement (written as an ``.eml`` file: the demo has no mail server) and merges the
others into a mail-house print batch with its manifest, all under ``OUT/statements``.
It reports counts, file names and public ids only (no patient data).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from claims_server.config import load_settings
from claims_server.db import unit_of_work
from claims_server.models import Patient, Statement, StatementState, utcnow
from claims_server.security.principal import acting_as, system_principal
from claims_server.statements.delivery import (
    FolderMailer,
    build_print_batch,
    email_issued_statement,
    statements_to_print,
    write_print_batch,
)


@dataclass
class StatementDay:
    as_of: str = ""
    run: dict[str, Any] = field(default_factory=dict)
    emailed: str | None = None  # statement public id
    email_file: str | None = None
    print_batch: dict[str, Any] | None = None

    def lines(self) -> list[str]:
        out = [
            f"statement run as of {self.as_of}: {self.run.get('issued', 0)} issued, "
            f"{self.run.get('skipped', 0)} skipped {self.run.get('skip_reasons', {})}, {self.run.get('held', 0)} held"
        ]
        if self.emailed:
            out.append(f"emailed statement {self.emailed} -> {self.email_file}")
        if self.print_batch:
            out.append(
                f"print batch {self.print_batch['pdf']}: {self.print_batch['statements']} statements, "
                f"{self.print_batch['pages']} pages on {self.print_batch['sheets']} sheets, "
                f"manifest {self.print_batch['manifest']}"
            )
        return out

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_statement_day(
    factory: sessionmaker[Session], out_dir: Path, *, today: date | None = None
) -> StatementDay:
    """Run statements, email the first one whose patient has an email address, print the rest."""
    from claims_server.portal.urls import pay_page_url
    from claims_server.statements.services import run_progress, run_statements

    settings = load_settings()
    folder = out_dir / "statements"
    day = StatementDay()
    with acting_as(system_principal("cli:demo")):
        with unit_of_work(factory) as session:
            as_of = today or date.today()
            run = run_statements(session, as_of, pay_url=pay_page_url(settings))
            day.as_of = as_of.isoformat()
            day.run = run_progress(run)
        now = utcnow()
        with unit_of_work(factory) as session:
            issued = session.scalars(
                select(Statement)
                .join(Patient, Patient.id == Statement.patient_id)
                .where(Statement.state == StatementState.ISSUED)
                .order_by(Statement.id)
            ).all()
            first = next((s for s in issued if session.get(Patient, s.patient_id).email), None)
            if first is not None:
                sent = email_issued_statement(
                    session, first, settings=settings, now=now, mailer=FolderMailer(folder / "email")
                )
                day.emailed, day.email_file = first.public_id, Path(sent.sent_to).name
        with unit_of_work(factory) as session:
            to_print = statements_to_print(session)
            if to_print:
                batch = build_print_batch(session, to_print, load_pdf=_pdf, now=now)
                # The demo shows its files (synthetic patients) in its own folder.
                pdf_path, _ = write_print_batch(batch, folder / "print")
                day.print_batch = batch.to_json_dict() | {"pdf": pdf_path.name}
    return day


def _pdf(statement: Statement) -> bytes:
    from claims_server.statements.services import statement_pdf

    return statement_pdf(statement)
