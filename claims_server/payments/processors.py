"""The card processor behind online patient payments (the statement link, ``/pay``).

An online payment is posted to the ledger only after the processor approved a charge for
it, and the payment keeps the processor's reference (``record_patient_payment`` refuses a
link payment without one). Card data never reaches this server (PCI DSS: a real processor
collects the card in its own hosted fields and hands the browser a one-use payment token;
the server charges that token), so ``charge`` takes a token, never a card number.

``PAYMENT_PROCESSOR`` (config.py) picks the implementation:

- ``none`` (the default when ``CLAIMS_ENV=production``): no online payments. The patient
  pages show the balance, the statement and how to pay (mail the stub, call the office);
  the API's pay route answers 409.
- ``simulated`` (the default for development, test and the demo): a test-mode processor,
  like a card processor's sandbox. Its tokens are test outcomes (``test_approve``,
  ``test_decline``) instead of cards, and the pages say that no card is charged. Refused
  at start in production.

Exactly once: the payment's idempotency key goes to the processor with the charge, so a
retry after a crash between the charge and the commit gets the first charge back instead
of a second one (the simulated processor remembers its charges by key, as a real one does).
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from claims_server.config import Settings
from claims_server.errors import Conflict

#: The simulated processor's payment tokens (what a real processor's hosted fields would return).
TEST_APPROVE = "test_approve"
TEST_DECLINE = "test_decline"
TEST_TOKENS = (TEST_APPROVE, TEST_DECLINE)


@dataclass(frozen=True, slots=True)
class ChargeResult:
    """The processor's answer: approved with its reference, or declined with a reason to show."""

    approved: bool
    reference: str | None
    decline_reason: str | None = None


class PaymentProcessor(Protocol):
    """What the payment service needs from a card processor."""

    name: str
    #: True when no real money moves (the pages say so).
    test_mode: bool

    def charge(
        self, amount_cents: int, idempotency_key: str, description: str, payment_token: str
    ) -> ChargeResult:
        """Charge ``payment_token`` once per ``idempotency_key``; the same key answers the first result."""
        ...


class OnlinePaymentsDisabled(Conflict):
    """``PAYMENT_PROCESSOR=none``: this server takes no payments online."""

    def __init__(self) -> None:
        super().__init__(
            "online payments are not enabled on this server; pay by mail with the statement stub "
            "or call the billing office",
            errors=[{"rule": "online_payments_disabled", "message": "online payments are not enabled"}],
        )


class SimulatedProcessor:
    """A sandbox processor: approves ``test_approve``, declines ``test_decline``, charges no card.

    It keeps its charges by idempotency key (the most recent ``MAX_REMEMBERED``) so a
    repeated key answers the first result, approved or declined, as a real processor does;
    the same key with another amount or token is declined rather than charged again.
    """

    name = "simulated"
    test_mode = True
    MAX_REMEMBERED = 10_000

    def __init__(self) -> None:
        self._charges: OrderedDict[str, tuple[int, str, ChargeResult]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def charges(self) -> dict[str, ChargeResult]:
        """The charges made, by idempotency key (what the sandbox's dashboard would list)."""
        with self._lock:
            return {key: result for key, (_, _, result) in self._charges.items()}

    def charge(
        self, amount_cents: int, idempotency_key: str, description: str, payment_token: str
    ) -> ChargeResult:
        with self._lock:
            seen = self._charges.get(idempotency_key)
            if seen is not None:
                amount, token, result = seen
                if (amount, token) != (amount_cents, payment_token):
                    return ChargeResult(False, None, "This payment key was already used for another charge.")
                return result
            if payment_token == TEST_APPROVE:
                result = ChargeResult(True, f"sim_ch_{secrets.token_hex(12)}")
            elif payment_token == TEST_DECLINE:
                result = ChargeResult(False, None, "The card was declined (test mode).")
            else:
                result = ChargeResult(False, None, "The payment details were not accepted.")
            self._charges[idempotency_key] = (amount_cents, payment_token, result)
            while len(self._charges) > self.MAX_REMEMBERED:
                self._charges.popitem(last=False)
            return result


def make_processor(settings: Settings) -> PaymentProcessor | None:
    """The processor ``PAYMENT_PROCESSOR`` names, or None when online payments are off."""
    if settings.payment_processor == "simulated":
        return SimulatedProcessor()
    return None


_EXTENSION = "claims_payment_processor"


def app_processor(app: Any = None) -> PaymentProcessor | None:
    """This app's processor (one instance per app, made on first use)."""
    from flask import current_app

    from claims_server.app import state

    target = app or current_app
    if _EXTENSION not in target.extensions:
        target.extensions.setdefault(_EXTENSION, make_processor(state(target).settings))
    processor: PaymentProcessor | None = target.extensions[_EXTENSION]
    return processor
