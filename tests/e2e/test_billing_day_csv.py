"""Issue 16, done when #2: a day of imported charges through the product's own doors.

On a server started from an EMPTY database (the office set up through the API only, plus 24
more patients with their coverages), ``claims-server claims import`` of a 500-claim CSV, then
``claims-server batches send``, then the simulated clearinghouse (``claims-server simulator
run --watch`` on the route's folders), then nothing: the server's own scheduler picks up the
999s, 277CAs and 835s. Every claim ends paid and every number equals the CSV to the cent:
the claims' charges, the 835s' charges, each claim's paid + adjustments, the ledger (balanced,
no insurance A/R left, the patients owing exactly what the payer assigned to them). The
same CSV again imports nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from claims_server.models import (
    Account,
    AccountCode,
    Adjustment,
    AdjustmentGroup,
    ChargeImport,
    Claim,
    ClaimPayment,
    ClaimState,
    LinePayment,
    Posting,
)
from tests.charge_files import write_charge_csv
from tests.e2e.conftest import UI_PASSWORD, _ui_database, start_server
from tests.e2e.office import call_api, set_up_office, sign_in_api
from tests.services import running_process

CLAIMS = 500
MORE_PATIENTS = 24


@dataclass
class Office:
    base_url: str
    database_url: str
    instance: Path
    factory: Any


def _cli(office: Office, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": office.database_url, "INSTANCE_PATH": str(office.instance)}
    env.pop("CELERY_BROKER_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "claims_server", *args], env=env, capture_output=True, text=True, timeout=600
    )


@contextmanager
def _office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    import pyotp

    from claims_server.db import make_engine, make_session_factory, unit_of_work
    from claims_server.migrate import upgrade
    from claims_server.models import Role
    from claims_server.security.authn import create_user
    from claims_server.security.principal import acting_as, system_principal

    with _ui_database(tmp_path_factory) as url:
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        secret = pyotp.random_base32()
        with acting_as(system_principal("test:csv-day")), unit_of_work(factory) as session:
            admin = create_user(
                session, username="csv-admin", display_name="CSV admin", role=Role.ADMIN, password=UI_PASSWORD
            )
            admin.totp_secret, admin.totp_enabled = secret, True
        instance = tmp_path_factory.mktemp("csv-day-instance")
        with start_server(url, instance, SCHEDULER_INTERVALS="poll-clearinghouse-inboxes=2") as base:
            token = sign_in_api(base, "csv-admin", UI_PASSWORD, pyotp.TOTP(secret).now())
            ids = set_up_office(base, token)
            for n in range(MORE_PATIENTS):
                patient = call_api(
                    base,
                    token,
                    "POST",
                    "/api/v1/patients",
                    {
                        "practice": ids["practice"],
                        "account_number": f"CSV-{n:04d}",
                        "last_name": "Importer",
                        "first_name": f"Pat{chr(65 + n)}",
                        "birth_date": f"19{50 + n}-0{1 + n % 9}-1{n % 9}",
                        "sex": "FM"[n % 2],
                        "address_line1": f"{n + 10} Elm St",
                        "city": "Springfield",
                        "state": "IL",
                        "zip_code": "62704",
                    },
                )["id"]
                call_api(
                    base,
                    token,
                    "POST",
                    f"/api/v1/patients/{patient}/coverages",
                    {"payer": ids["payer"], "member_id": f"PHP{n:06d}", "effective_start": "2024-01-01"},
                )
            yield Office(base, url, instance, factory)
        engine.dispose()


def _simulator(instance: Path) -> subprocess.Popen[bytes]:
    outbox, inbox = instance / "edi" / "outbox", instance / "edi" / "inbox"
    command = [
        "simulator",
        "run",
        "--watch",
        "--interval",
        "1",
        "--outbox",
        str(outbox),
        "--inbox",
        str(inbox),
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "claims_server", *command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_500_imported_claims_are_sent_answered_and_paid_to_the_cent(tmp_path_factory, tmp_path):
    with _office(tmp_path_factory) as office:
        charges = tmp_path / "charges.csv"
        with office.factory() as session:
            facts = write_charge_csv(session, charges, claims=CLAIMS, spread_days=28)
        assert facts.claims == CLAIMS and facts.lines > CLAIMS

        imported = _cli(office, "claims", "import", str(charges), "--json")
        assert imported.returncode == 0, imported.stderr[-3000:]
        report = json.loads(imported.stdout)
        assert (report["claims"], report["lines"], report["ready"]) == (CLAIMS, facts.lines, CLAIMS)
        total = f"{facts.total_charge_cents // 100}.{facts.total_charge_cents % 100:02d}"
        assert report["total_charge"] == total

        sent = _cli(office, "batches", "send", "--json")
        assert sent.returncode == 0, sent.stderr[-3000:]
        sending = json.loads(sent.stdout)
        assert sending["claims_batched"] == CLAIMS and sending["total_charge"] == total
        assert all(b["state"] == "sent" for b in sending["batches"]), sending["batches"]

        # The clearinghouse answers; nobody runs a command: the server's scheduler polls every 2 s.
        with running_process(
            _simulator(office.instance), lambda: True, name="the simulator", output=lambda: ""
        ):
            deadline = time.monotonic() + 300
            while True:
                with office.factory() as session:
                    states = dict(
                        session.execute(
                            select(Claim.state, func.count())
                            .where(Claim.charge_import_id.is_not(None))
                            .group_by(Claim.state)
                        ).all()
                    )
                if states == {ClaimState.PAID: CLAIMS} or time.monotonic() > deadline:
                    break
                time.sleep(2)
        assert states == {ClaimState.PAID: CLAIMS}, states

        with office.factory() as session:
            claims = session.scalars(select(Claim).where(Claim.charge_import_id.is_not(None))).all()
            by_ref = {c.patient_control_number: c for c in claims}
            assert sorted(by_ref) == sorted(facts.claim_refs)
            assert {ref: c.total_charge_cents for ref, c in by_ref.items()} == facts.charge_by_ref
            payments = session.scalars(
                select(ClaimPayment).where(ClaimPayment.claim_id.in_([c.id for c in claims]))
            ).all()
            assert len(payments) == CLAIMS  # one adjudication each, posted once
            assert sum(p.charge_cents for p in payments) == facts.total_charge_cents
            lines = session.scalars(
                select(LinePayment).where(LinePayment.claim_payment_id.in_([p.id for p in payments]))
            ).all()
            adjustments = session.execute(
                select(Adjustment.group_code, func.sum(Adjustment.amount_cents))
                .where(Adjustment.line_payment_id.in_([x.id for x in lines]))
                .group_by(Adjustment.group_code)
            ).all()
            adjusted = dict(adjustments)
            paid = sum(p.paid_cents for p in payments)
            # Every cent of the CSV is accounted for by the payer: paid + CO + PR (+ OA/PI).
            assert paid + sum(adjusted.values()) == facts.total_charge_cents
            assert paid > 0

            def balance(code: AccountCode) -> int:
                return session.scalar(
                    select(func.coalesce(func.sum(Posting.amount_cents), 0))
                    .join(Account, Account.id == Posting.account_id)
                    .where(Account.code == code, Posting.claim_id.in_([c.id for c in claims]))
                )

            assert session.scalar(select(func.sum(Posting.amount_cents))) == 0  # the ledger balances
            assert balance(AccountCode.GROSS_CHARGES) == -facts.total_charge_cents
            assert balance(AccountCode.AR_INSURANCE) == 0  # the payer owes nothing more
            assert balance(AccountCode.AR_PATIENT) == adjusted.get(AdjustmentGroup.PATIENT_RESPONSIBILITY, 0)
            assert balance(AccountCode.CASH_CLEARING) == paid
            imports = session.scalar(select(func.count()).select_from(ChargeImport))

        again = _cli(office, "claims", "import", str(charges), "--json")
        assert again.returncode == 0, again.stderr[-3000:]
        assert json.loads(again.stdout)["status"] == "duplicate"
        with office.factory() as session:
            assert session.scalar(select(func.count()).select_from(ChargeImport)) == imports
            assert session.scalar(select(func.count()).select_from(Claim)) == CLAIMS
