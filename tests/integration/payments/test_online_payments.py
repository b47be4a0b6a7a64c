"""Online (link) payments: charged by the card processor first, posted only when approved, once.

The processor is the simulated one (``PAYMENT_PROCESSOR=simulated``), the test-mode
processor the development and test servers run.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import date

import pytest
from sqlalchemy import func, select

from claims_server.config import ConfigError, load_settings
from claims_server.ledger import unbalanced_entries
from claims_server.models import JournalEntry, PatientPayment, PaymentMethod
from claims_server.models.payments import PaymentSource
from claims_server.payments.processors import (
    TEST_APPROVE,
    TEST_DECLINE,
    ChargeResult,
    SimulatedProcessor,
    make_processor,
)
from claims_server.payments.services import (
    OnlineCharge,
    PaymentDeclined,
    PaymentRefused,
    patient_balance,
    record_patient_payment,
)
from tests.integration.payments.support import owed_claim


@pytest.fixture
def owed(session, world) -> int:
    """A patient who owes 80.00 (40.00 + 15.00 + 25.00); returns the patient's id."""
    first = owed_claim(
        session,
        world,
        "ONLINE1",
        [("99213", 15000, 4000), ("36415", 2500, 1500)],
        since=date(2026, 1, 10),
    )
    owed_claim(session, world, "ONLINE2", [("99214", 20000, 2500)], since=date(2026, 2, 10))
    session.commit()
    return first.patient_id


def _payments(session) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(PatientPayment))


def _online(session, patient_id: int, amount: int, key: str, charge: OnlineCharge | None, **kw):
    return record_patient_payment(
        session,
        patient_id=patient_id,
        amount_cents=amount,
        source=PaymentSource.LINK,
        method=PaymentMethod.PORTAL,
        idempotency_key=key,
        charge=charge,
        **kw,
    )


def test_a_link_payment_without_an_approved_charge_is_refused(session, owed):
    with pytest.raises(PaymentRefused) as caught:
        _online(session, owed, 1000, "no-charge", None)
    assert caught.value.errors[0]["rule"] == "processor_reference"
    assert _payments(session) == 0 and patient_balance(session, owed) == 8000


def test_an_approved_charge_posts_with_the_processors_reference(session, owed):
    processor = SimulatedProcessor()
    outcome = _online(session, owed, 2500, "ok-1", OnlineCharge(processor, TEST_APPROVE))
    session.commit()
    charge = processor.charges["ok-1"]
    assert charge.approved and charge.reference and charge.reference.startswith("sim_ch_")
    assert outcome.payment.reference == charge.reference
    assert outcome.to_json_dict()["reference"] == charge.reference
    assert patient_balance(session, owed) == 5500 and unbalanced_entries(session) == []


def test_a_decline_posts_nothing_and_the_same_key_stays_declined(session, owed):
    processor = SimulatedProcessor()
    entries = session.scalar(select(func.count()).select_from(JournalEntry))
    with pytest.raises(PaymentDeclined) as caught:
        _online(session, owed, 2500, "dec-1", OnlineCharge(processor, TEST_DECLINE))
    assert caught.value.status == 402 and caught.value.errors[0]["rule"] == "declined"
    assert "declined" in caught.value.errors[0]["message"]
    assert _payments(session) == 0 and patient_balance(session, owed) == 8000
    assert session.scalar(select(func.count()).select_from(JournalEntry)) == entries
    # A processor answers a repeated key with its first answer: the retry needs a new key.
    with pytest.raises(PaymentDeclined):
        _online(session, owed, 2500, "dec-1", OnlineCharge(processor, TEST_DECLINE))
    session.rollback()
    _online(session, owed, 2500, "dec-2", OnlineCharge(processor, TEST_APPROVE))
    session.commit()
    assert _payments(session) == 1 and patient_balance(session, owed) == 5500


def test_nothing_is_charged_for_a_payment_the_checks_refuse(session, owed):
    processor = SimulatedProcessor()
    with pytest.raises(PaymentRefused) as caught:
        _online(session, owed, 8001, "over", OnlineCharge(processor, TEST_APPROVE))
    assert caught.value.errors[0]["rule"] == "overpayment"
    assert processor.charges == {}


def test_the_simulated_processor_is_idempotent_by_key():
    processor = SimulatedProcessor()
    first = processor.charge(1000, "k", "Statement payment", TEST_APPROVE)
    assert processor.charge(1000, "k", "Statement payment", TEST_APPROVE) == first
    reused = processor.charge(2000, "k", "Statement payment", TEST_APPROVE)
    assert reused == ChargeResult(False, None, "This payment key was already used for another charge.")
    assert not processor.charge(1000, "other", "Statement payment", "4111111111111111").approved
    assert list(processor.charges) == ["k", "other"]


def test_the_processor_setting_defaults_and_production_refuses_the_simulated_one(tmp_path):
    base = {"INSTANCE_PATH": str(tmp_path), "MASTER_KEY": "dGVzdC1vbmx5LW1hc3Rlci1rZXktMzItYnl0ZXMhISE="}
    production = {
        **base,
        "CLAIMS_ENV": "production",
        "DATABASE_URL": "postgresql+psycopg://db/claims",
        "PUBLIC_BASE_URL": "https://billing.example.org",
    }
    assert load_settings(base, environ={}).payment_processor == "simulated"
    assert isinstance(make_processor(load_settings(base, environ={})), SimulatedProcessor)
    assert load_settings(production, environ={}).payment_processor == "none"
    assert make_processor(load_settings(production, environ={})) is None
    with pytest.raises(ConfigError) as refused:
        load_settings({**production, "PAYMENT_PROCESSOR": "simulated"}, environ={})
    assert str(refused.value).startswith("configuration error: PAYMENT_PROCESSOR: ")
    assert "\n" not in str(refused.value)
    with pytest.raises(ConfigError):
        load_settings({**base, "PAYMENT_PROCESSOR": "stripe"}, environ={})


class _MeetingProcessor(SimulatedProcessor):
    """The simulated processor, but a charge waits (up to 3 s) for a second charge to arrive.

    Two payments that both passed the balance check meet here; with the patient locked
    before the balance is read, the second never gets this far while the first is open.
    """

    def __init__(self) -> None:
        super().__init__()
        self.meeting = threading.Barrier(2, timeout=3)

    def charge(self, amount_cents, idempotency_key, description, payment_token) -> ChargeResult:
        with contextlib.suppress(threading.BrokenBarrierError):
            self.meeting.wait()
        return super().charge(amount_cents, idempotency_key, description, payment_token)


def test_two_payments_under_different_keys_cannot_both_pass_the_balance_check(factory, owed):
    """PostgreSQL READ COMMITTED: the patient row lock; SQLite: one writer at a time."""
    processor = _MeetingProcessor()
    start = threading.Barrier(2)
    results: dict[str, object] = {}

    def pay(key: str) -> None:
        with factory() as s:
            start.wait()
            try:
                _online(s, owed, 6000, key, OnlineCharge(processor, TEST_APPROVE))
                s.commit()
                results[key] = "paid"
            except PaymentRefused as exc:
                s.rollback()
                results[key] = exc.errors[0]["rule"]
            except Exception as exc:  # the assertion below names any other failure
                results[key] = exc

    threads = [threading.Thread(target=pay, args=(key,)) for key in ("race-a", "race-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(map(str, results.values())) == ["overpayment", "paid"], results
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(PatientPayment)) == 1
        assert patient_balance(s, owed) == 2000
        assert len(processor.charges) == 1  # the refused one was never charged
