"""Shared builders and the pyx12 oracle for the 837 tests (no tests of its own)."""

from __future__ import annotations

import io
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import date, datetime

import pyx12.params
import pyx12.x12n_document

from edi.claims import Address, BillingProvider, Contact, Payer, Receiver, Submitter, Subscriber

WHEN = datetime(2024, 6, 3, 9, 30)
BILLING = BillingProvider(
    npi="1234567893",
    address=Address("123 HEALTH WAY", "SPRINGFIELD", "IL", "627011234"),
    tax_id="123456789",
    organization_name="SYNTHETIC FAMILY CLINIC",
    taxonomy="207Q00000X",
    contact=Contact("BILLING OFFICE", phone="2175550100", email="billing@example.invalid"),
)
SUBMITTER = Submitter("SYNTHETIC BILLING", "SUBMIT01", Contact("EDI DESK", phone="2175550199"))
RECEIVER = Receiver("SYNTHETIC CLEARINGHOUSE", "CLEAR01")
PAYER = Payer("SYNTHETIC HEALTH PLAN", "SYN01", Address("PO BOX 100", "CHICAGO", "IL", "60601"))
SECOND_PAYER = Payer("EXAMPLE MUTUAL", "EXM02")
SUBSCRIBER = Subscriber(
    last_name="DOE",
    first_name="JANE",
    middle_name="Q",
    member_id="MEM123456",
    birth_date=date(1980, 2, 29),
    sex="F",
    address=Address("12 ELM ST", "SPRINGFIELD", "IL", "62704", line2="APT 3"),
    group_number="GRP001",
)


@dataclass(frozen=True)
class Pyx12Verdict:
    ok: bool
    ack: str
    errors: list[str]

    @property
    def accepted(self) -> bool:
        """0 errors and a 999 with IK5*A and AK9*A."""
        return self.ok and not self.errors and "IK5*A" in self.ack and "AK9*A" in self.ack


def _collect_errors(node: object, out: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "errors" and value:
                out.extend(json.dumps(v) for v in value)
            else:
                _collect_errors(value, out)
    elif isinstance(node, list):
        for item in node:
            _collect_errors(item, out)


def pyx12_validate(text: str) -> Pyx12Verdict:
    """Run pyx12's full TR3 validation (the reference) on an 837 held in a string."""
    fd, path = tempfile.mkstemp(suffix=".x12")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        ack, report = io.StringIO(), io.StringIO()
        ok = pyx12.x12n_document.x12n_document(
            param=pyx12.params.params(), src_file=path, fd_997=ack, fd_html=None, fd_json=report
        )
    finally:
        os.unlink(path)
    errors: list[str] = []
    raw = report.getvalue()
    if raw.strip():
        _collect_errors(json.loads(raw), errors)
    return Pyx12Verdict(bool(ok), ack.getvalue(), errors)
