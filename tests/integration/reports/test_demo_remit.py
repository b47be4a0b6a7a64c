"""``claims-server demo`` continues the day: 835s posted, denials queued, one corrected and resent,
one secondary billed with COB, A/R and KPIs reported, and the ledger balances."""

from __future__ import annotations

import os
from contextlib import nullcontext

from claims_server.demo import run_demo
from tests.services import fresh_postgres_database


def test_demo_continues_the_day(tmp_path):
    on_postgres = os.environ.get("TEST_DATABASE", "sqlite") == "postgres"
    with (
        fresh_postgres_database()
        if on_postgres
        else nullcontext(f"sqlite:///{tmp_path / 'demo.sqlite3'}") as url
    ):
        report = run_demo(url, tmp_path / "out")
    remit = report.remit
    assert remit is not None
    assert remit.ledger_balances is True
    assert sum(int(v.replace(".", "")) for v in remit.ledger_totals.values()) == 0
    assert remit.queues["denied"] >= 1
    assert remit.corrected is not None and remit.corrected["ref_f8"]
    assert remit.corrected["state"] not in ("draft", "ready")  # it was sent and answered
    assert remit.secondary is not None and remit.secondary["errors"] == 0
    assert {k["name"] for k in remit.kpis["kpis"]} >= {"clean_claim_rate", "net_collection_rate"}
    data = report.to_json_dict()["remittances"]
    assert data["ledger_balances"] is True and "ar_aging" in data
