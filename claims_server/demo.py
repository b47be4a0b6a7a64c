"""``claims-server demo``: the billing day on the embedded default, step by step.

It migrates the database, seeds the synthetic practice, then runs the billing day
(``claims_server.demo_day``): claims created and scrubbed, ready claims batched into
837s, sent to the simulated clearinghouse over the folder adapter, and the 999s,
277CAs and 835s read back. Later steps (remittance posting, statements) extend
``DemoReport``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from claims_server.db import make_engine, make_session_factory, unit_of_work
from claims_server.demo_day import BillingDay, run_billing_day
from claims_server.demo_seed import SeedSummary, seed_practice
from claims_server.eligibility.demo import EligibilityDay, run_eligibility_day
from claims_server.migrate import current, upgrade
from claims_server.reports.demo_day import RemitDay, continue_day
from claims_server.security.principal import acting_as, system_principal
from claims_server.statements.delivery_demo import StatementDay, run_statement_day


@dataclass
class DemoReport:
    database_revision: str | None
    seed: SeedSummary
    day: BillingDay | None = None
    remit: RemitDay | None = None  # remit-work: 835s posted, queues, correction, secondary, A/R, KPIs
    eligibility: EligibilityDay | None = None  # eligibility: tomorrow's patients, 270 batch and 271s
    statements: StatementDay | None = None  # statements-delivery: run, one email, the print batch

    def describe(self) -> str:
        lines = ["claims-server demo", f"database schema: {self.database_revision}", ""]
        lines += self.seed.lines()
        if not self.seed.created_anything:
            lines += ["", "(the practice already existed; nothing was added)"]
        if self.day is not None:
            lines += ["", "billing day:"] + [f"  {line}" for line in self.day.lines()]
        if self.remit is not None:
            lines += ["", "remittances and follow-up:"] + [f"  {line}" for line in self.remit.lines()]
        if self.eligibility is not None:
            lines += ["", "eligibility:"] + [f"  {line}" for line in self.eligibility.lines()]
        if self.statements is not None:
            lines += ["", "patient statements:"] + [f"  {line}" for line in self.statements.lines()]
        return "\n".join(lines)

    def to_json_dict(self) -> dict[str, object]:
        seed = asdict(self.seed)
        data: dict[str, object] = {"database_revision": self.database_revision, "practice": seed}
        if self.day is not None:
            data["billing_day"] = self.day.to_json_dict()
        if self.remit is not None:
            data["remittances"] = self.remit.to_json_dict()
        if self.eligibility is not None:
            data["eligibility"] = self.eligibility.to_json_dict()
        if self.statements is not None:
            data["statements"] = self.statements.to_json_dict()
        return data


def run_demo(database_url: str, out_dir: Path | None = None, *, today: date | None = None) -> DemoReport:
    """Seed the practice and, when ``out_dir`` is given, run the billing day with files there."""
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        factory = make_session_factory(engine)
        with acting_as(system_principal("cli:demo")), unit_of_work(factory) as session:
            summary = seed_practice(session)
        day = run_billing_day(factory, out_dir, today=today) if out_dir is not None else None
        remit = continue_day(factory, out_dir, today=today) if out_dir is not None else None
        eligibility = run_eligibility_day(factory, out_dir, today=today) if out_dir is not None else None
        statements = run_statement_day(factory, out_dir, today=today) if out_dir is not None else None
    finally:
        engine.dispose()
    return DemoReport(
        database_revision=current(database_url),
        seed=summary,
        day=day,
        remit=remit,
        eligibility=eligibility,
        statements=statements,
    )
