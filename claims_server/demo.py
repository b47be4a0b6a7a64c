"""``claims-server demo``: the billing day on the embedded default, step by step.

Today it migrates the database and seeds the synthetic practice; later steps (claims,
scrub, 837 batch, acknowledgments, remittances, statements) extend ``DemoReport``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from claims_server.db import make_engine, make_session_factory, unit_of_work
from claims_server.demo_seed import SeedSummary, seed_practice
from claims_server.migrate import current, upgrade


@dataclass
class DemoReport:
    database_revision: str | None
    seed: SeedSummary

    def describe(self) -> str:
        lines = ["claims-server demo", f"database schema: {self.database_revision}", ""]
        lines += self.seed.lines()
        if not self.seed.created_anything:
            lines += ["", "(the practice already existed; nothing was added)"]
        return "\n".join(lines)

    def to_json_dict(self) -> dict[str, object]:
        seed = asdict(self.seed)
        return {"database_revision": self.database_revision, "practice": seed}


def run_demo(database_url: str) -> DemoReport:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            summary = seed_practice(session)
    finally:
        engine.dispose()
    return DemoReport(database_revision=current(database_url), seed=summary)
