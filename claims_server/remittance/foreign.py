"""Is this 835 ours? Payer, payee and claim matches of a stored 835, before anything is posted.

An 835 from a payer we do not bill, or none of whose claims (CLP01) is ours (typically
paying a payee, N1*PE, whose NPI or TIN is not ours either), is almost certainly someone
else's remittance (a clearinghouse mix-up, a file picked by mistake).
Posting it would put the money in unapplied payments and open a work item per claim:
not wrong, but it should be a decision. So posting such a file needs a billing
supervisor's explicit confirmation: ``confirm_foreign=true`` on the API, a checkbox on the
workspace's preview. The check reads the stored file (headers and CLP01s only) and one
query per kind of identifier; it changes nothing.

A file is *foreign* when, for any of its payments: the payer is not one of ours (TRN03 /
N1*PR N104 as ``Payer.remittance_payer_identifier``, or N1*PR N104 as ``Payer.payer_id``:
the posting engine's own rule), or it has claims and none of them is ours. A payee (N1*PE)
NPI/TIN that is not ours is named among the reasons of a foreign file, and is a warning
only when the payer and claims are ours (then the money is ours and the payer's record of
our NPI is what is off); so is a file of which only some claims are ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from claims_server.errors import Conflict, NotFound
from claims_server.models import Claim, EdiFile, Payer
from claims_server.models.practice import Practice, Provider
from claims_server.security.principal import current_principal
from edi import x835

#: Roles that may confirm posting a foreign 835 (a person who looked at it, never a token).
CONFIRMING_ROLES = frozenset({"billing_supervisor", "admin"})


@dataclass(slots=True)
class PaymentOrigin:
    """One payment (835 transaction set) of the file: who pays whom, how many claims are ours."""

    trace_number: str
    payment_cents: int
    payer: str  # the payer's name and identifier as the file gives them
    payer_known: bool
    payee: str  # the payee's name and identifier as the file gives them
    payee_ours: bool | None  # None: the payee gives no NPI or TIN
    claims: int = 0
    matched: int = 0
    _numbers: list[str] = field(default_factory=list, repr=False)

    @property
    def reasons(self) -> list[str]:
        """Why posting needs a supervisor's confirmation (empty: it does not)."""
        out = []
        if not self.payer_known:
            out.append(f"the payer ({self.payer}) is not one of our payers")
        if self.claims and not self.matched:
            out.append(f"none of its {self.claims} claims is ours (0 of {self.claims} matched)")
        if out and self.payee_ours is False:
            out.append(f"the payee ({self.payee}) is not our practice or one of its providers (NPI/TIN)")
        return out

    @property
    def warnings(self) -> list[str]:
        """What to look at that does not by itself stop posting: a payee NPI/TIN not on file
        (with claims of ours: the payer's record of us is off), some claims not ours."""
        if self.reasons:
            return []
        out = []
        if self.payee_ours is False:
            out.append(f"the payee ({self.payee}) is not our practice or one of its providers (NPI/TIN)")
        if self.matched < self.claims:
            out.append(f"{self.matched} of {self.claims} claims matched a claim of ours")
        return out

    @property
    def foreign(self) -> bool:
        return bool(self.reasons)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "trace_number": self.trace_number,
            "payment": x835.format_cents(self.payment_cents),
            "payer": self.payer,
            "payer_known": self.payer_known,
            "payee": self.payee,
            "payee_ours": self.payee_ours,
            "claims": self.claims,
            "claims_matched": self.matched,
            "foreign": self.foreign,
            "reasons": self.reasons,
            "warnings": self.warnings,
        }


@dataclass(slots=True)
class OriginCheck:
    payments: list[PaymentOrigin]

    @property
    def foreign(self) -> bool:
        return any(p.foreign for p in self.payments)

    @property
    def reasons(self) -> list[str]:
        many = len(self.payments) > 1
        return [
            (f"payment {p.trace_number}: {reason}" if many else reason)
            for p in self.payments
            for reason in p.reasons
        ]

    def to_json_dict(self) -> dict[str, Any]:
        return {"foreign": self.foreign, "payments": [p.to_json_dict() for p in self.payments]}


def _party(party: x835.Party | None) -> str:
    if party is None:
        return "not named"
    ident = f"{party.id_qualifier} {party.identifier}".strip()
    tin = party.reference("TJ")
    bits = [party.name or "no name"] + ([ident] if ident else []) + ([f"TIN {tin}"] if tin else [])
    return ", ".join(bits)


def check_origin(session: Session, edi_file_id: int) -> OriginCheck:
    """Payer, payee and CLP01 matches of the stored 835 ``edi_file_id`` (reads only)."""
    edi_file = session.get(EdiFile, edi_file_id)
    if edi_file is None or not edi_file.content:
        raise NotFound("no stored 835 with that id")
    payments: list[PaymentOrigin] = []
    current: PaymentOrigin | None = None
    npis = set(session.scalars(select(Practice.npi))) | set(session.scalars(select(Provider.npi)))
    tins = {t for t in session.scalars(select(Practice.tax_id)) if t}
    try:
        events = list(x835.iter_835(bytes(edi_file.content), file=edi_file.stored_name))
    except x835.X12SyntaxError:
        return OriginCheck([])  # not X12: the posting's own check says why
    for event in events:
        if isinstance(event, x835.RemittanceHeader):
            current = PaymentOrigin(
                trace_number=event.payment.trace_number,
                payment_cents=event.payment.amount_cents,
                payer=_party(event.payer) if event.payer else event.payment.payer_identifier,
                payer_known=_payer_known(session, event),
                payee=_party(event.payee),
                payee_ours=_payee_ours(event.payee, npis, tins),
            )
            payments.append(current)
        elif isinstance(event, x835.ClaimPayment) and current is not None:
            current.claims += 1
            current._numbers.append(event.patient_control_number)
    for p in payments:
        wanted = set(p._numbers)
        ours: set[str] = set()
        chunk = list(wanted)
        for start in range(0, len(chunk), 900):
            ours |= set(
                session.scalars(
                    select(Claim.patient_control_number).where(
                        Claim.patient_control_number.in_(chunk[start : start + 900])
                    )
                )
            )
        p.matched = sum(1 for number in p._numbers if number in ours)
    return OriginCheck(payments)


def _payer_known(session: Session, header: x835.RemittanceHeader) -> bool:
    """The posting engine's rule (``_Poster.resolve_payer``): TRN03 or N1*PR N104 as the payer's
    remittance identifier, else N1*PR N104 as its payer id."""
    identifiers = [header.payment.payer_identifier]
    if header.payer is not None and header.payer.identifier:
        identifiers.append(header.payer.identifier)
    conditions = [Payer.remittance_payer_identifier.in_(identifiers)]
    if header.payer is not None and header.payer.identifier:
        conditions.append(Payer.payer_id == header.payer.identifier)
    return session.scalar(select(Payer.id).where(or_(*conditions)).limit(1)) is not None


def _payee_ours(payee: x835.Party | None, npis: set[str], tins: set[str]) -> bool | None:
    if payee is None:
        return None
    named: list[bool] = []
    if payee.npi:
        named.append(payee.npi in npis)
    tin = payee.reference("TJ") or (payee.identifier if payee.id_qualifier == "FI" else None)
    if tin:
        named.append(tin.replace("-", "") in tins)
    if not named:
        return None
    return any(named)


def require_confirmation(check: OriginCheck, confirmed: bool) -> None:
    """Refuse (409, naming ``confirm_foreign``) to post a foreign 835 without a supervisor's
    explicit confirmation; nothing is posted then."""
    if not check.foreign:
        return
    role = current_principal().role
    if not confirmed:
        raise Conflict(
            "this 835 does not look like ours: " + "; ".join(check.reasons),
            errors=[
                {
                    "field": "confirm_foreign",
                    "rule": "foreign_remittance",
                    "message": "a billing supervisor must confirm posting it (confirm_foreign=true)",
                }
            ],
            origin=check.to_json_dict(),
        )
    if role not in CONFIRMING_ROLES:
        raise Conflict(
            "only a billing supervisor may confirm posting an 835 that does not look like ours",
            errors=[
                {
                    "field": "confirm_foreign",
                    "rule": "supervisor_confirmation",
                    "message": "only a billing supervisor (or an admin) may confirm it",
                }
            ],
            origin=check.to_json_dict(),
        )
