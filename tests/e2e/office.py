"""A billing office set up the way a new customer would: only through the API, on a server
started from an empty database (issue 16). The ``empty_office`` fixture in conftest.py uses
:func:`set_up_office`; tests that run the rest of the day (sending, the simulator, the
scheduler, payment) extend from :class:`EmptyOffice`.

What the API creates: the practice, a rendering provider, a clearinghouse route with a
folder transport (``edi/outbox`` and ``edi/inbox`` under the server's instance folder), a
payer on that route, a patient with a primary coverage, and the practice's fee schedule.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRACTICE = {
    "name": "Empty Office Family Care",
    "npi": "1234567893",
    "tax_id": "123456789",
    "taxonomy_code": "207Q00000X",
    "address_line1": "1 Main St",
    "city": "Springfield",
    "state": "IL",
    "zip_code": "62701-1234",
    "phone": "2175550100",
    "submitter_id": "SUB01",
}
PROVIDER = {"last_name": "Doe", "first_name": "Ann", "npi": "1245319599", "is_rendering": True}
ROUTE = {
    "name": "Office clearinghouse (folder drop)",
    "transport": "folder",
    "settings": {"outbox": "edi/outbox", "inbox": "edi/inbox"},
    "sender_id": "SUB01",
    "receiver_id": "CH01",
    "application_sender_code": "SUB01",
    "application_receiver_code": "CH01",
}
PAYER = {"name": "Prairie Health Plan", "payer_id": "PHP01", "claim_filing_indicator": "CI"}
PATIENT = {
    "account_number": "EO-1001",
    "last_name": "Keyboard",
    "first_name": "Kim",
    "birth_date": "1980-02-29",
    "sex": "F",
    "address_line1": "2 Elm St",
    "city": "Springfield",
    "state": "IL",
    "zip_code": "62704",
}
COVERAGE = {"member_id": "PHP123456", "effective_start": "2024-01-01"}
#: The practice's prices (procedure → charge); the charge entry test leaves charges empty.
FEES = {"99213": "125.00", "99214": "175.00", "36415": "12.50", "93000": "60.00"}
FEE_LABELS = {"99213": "Office visit, established, low", "36415": "Routine venipuncture"}


class ApiRefused(AssertionError):
    """The API answered 4xx/5xx while setting the office up (the body says why)."""


def call_api(base_url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    """One JSON request with a bearer token; the decoded answer, or ``ApiRefused``."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        base_url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
        | ({"Content-Type": "application/json"} if data is not None else {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            raw = answer.read()
    except urllib.error.HTTPError as exc:
        raise ApiRefused(
            f"{method} {path}: {exc.code} {exc.read().decode(errors='replace')[:2000]}"
        ) from None
    return json.loads(raw) if raw else None


def sign_in_api(base_url: str, username: str, password: str, totp_code: str | None) -> str:
    """``POST /api/v1/auth/login``: the session token for the API."""
    request = urllib.request.Request(
        base_url + "/api/v1/auth/login",
        data=json.dumps({"username": username, "password": password, "totp_code": totp_code}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())["token"]


@dataclass
class EmptyOffice:
    """The running server (``server``: a ``UiServer``), its instance folder, an admin's API
    token, and the public ids of what the API created."""

    server: Any
    instance_path: Path
    admin_token: str
    ids: dict[str, str] = field(default_factory=dict)
    patient_account: str = PATIENT["account_number"]
    fees: dict[str, str] = field(default_factory=lambda: dict(FEES))

    def api(self, method: str, path: str, body: Any = None) -> Any:
        return call_api(self.server.base_url, self.admin_token, method, path, body)


def set_up_office(base_url: str, token: str) -> dict[str, str]:
    """Create the office through the API; the public ids by name."""

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        return call_api(base_url, token, "POST", path, body)

    practice = post("/api/v1/practices", PRACTICE)["id"]
    provider = post("/api/v1/providers", {**PROVIDER, "practice": practice})["id"]
    route = post("/api/v1/clearinghouse-routes", ROUTE)["id"]
    payer = post("/api/v1/payers", {**PAYER, "route": route})["id"]
    patient = post("/api/v1/patients", {**PATIENT, "practice": practice})["id"]
    coverage = post(f"/api/v1/patients/{patient}/coverages", {**COVERAGE, "payer": payer})["id"]
    call_api(
        base_url,
        token,
        "PUT",
        f"/api/v1/fee-schedule?practice={practice}",
        {
            "entries": [
                {"procedure": code, "charge": charge, "description": FEE_LABELS.get(code)}
                for code, charge in FEES.items()
            ]
        },
    )
    return {
        "practice": practice,
        "provider": provider,
        "route": route,
        "payer": payer,
        "patient": patient,
        "coverage": coverage,
    }
