"""What each adjustment means for the patient, keyed by group AND reason (CAS01, CAS02).

A CARC alone does not say who owes the money: CARC 45 ("charge exceeds fee schedule /
maximum allowable") under group CO is a contractual write-off the patient never sees,
while under group PR it is the part above the allowed amount the payer put on the
patient, which only an out-of-network provider may bill (balance billing). So the
table is keyed by the pair, and the group decides who pays:

* ``PR``: patient responsibility. The known (PR, CARC) pairs have their own words; any
  other PR reason is "your share" with the group's explanation.
* ``PR-45``: billable only when the plan allows balance billing (``balance_billing``);
  otherwise it must not reach the patient: :func:`explain` says so (``billable`` False)
  and the caller keeps the amount off the statement and flags it for a person.
* ``CO``, ``OA``, ``PI``, ``CR``: never billed to the patient (contractual, other, payer
  initiated, correction); they may be printed as "you do not owe this", never as owed.

Source of the codes: the X12 Claim Adjustment Reason Code list and the group codes of
the 835 TR3 (CAS01), published at https://x12.org/codes/claim-adjustment-reason-codes
and https://x12.org/codes/claim-adjustment-group-codes. The sentences are the project's
own plain-language words (the official descriptions are X12's text); docs/statements.md
lists the table's source and the balance-billing rule.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Groups whose amounts the patient never owes (CAS01 other than PR).
NOT_PATIENT_GROUPS = frozenset({"CO", "OA", "PI", "CR"})
#: The CARC that is balance billing under group PR.
ABOVE_ALLOWED_CARC = "45"


@dataclass(frozen=True, slots=True)
class Explanation:
    """One (group, CARC) as the patient reads it."""

    group: str
    reason: str
    label: str  # short, in the reason line: "Deductible"
    text: str  # one or two plain sentences
    billable: bool  # may this amount be on the patient's statement as owed?

    @property
    def code(self) -> str:
        return f"{self.group}-{self.reason}"


def _pr(reason: str, label: str, text: str) -> tuple[tuple[str, str], tuple[str, str]]:
    return ("PR", reason), (label, text)


#: (group, CARC) -> (label, explanation) for the patient's share.
PATIENT_SHARE: dict[tuple[str, str], tuple[str, str]] = dict(
    (
        _pr(
            "1", "Deductible", "This counts toward your deductible, the amount you pay before your plan pays."
        ),
        _pr("2", "Coinsurance", "This is your percentage share of the cost under your plan."),
        _pr("3", "Copay", "This is the fixed copay your plan sets for this kind of visit."),
        _pr("66", "Blood deductible", "Your plan's blood deductible applies to this service."),
        _pr("96", "Not covered", "Your plan does not cover this service, so it is yours to pay."),
        _pr("204", "Not covered", "This service is not covered under your current benefit plan."),
        _pr("119", "Benefit limit reached", "You have reached your plan's limit for this kind of service."),
        _pr("242", "Out of network", "Your plan pays less, or nothing, for care outside its network."),
        _pr("27", "Coverage ended", "Your coverage had ended before the date of this service."),
        _pr("26", "Coverage not yet started", "Your coverage had not started on the date of this service."),
        _pr(
            "50",
            "Not medically necessary",
            "Your plan did not find this service medically necessary; you agreed to pay for it if so.",
        ),
        _pr("31", "Coverage not found", "Your plan could not find you as a member; please call us."),
        _pr("227", "Information needed", "Your plan asked you for information it did not receive."),
        _pr(
            ABOVE_ALLOWED_CARC,
            "Above the allowed amount",
            "Your plan does not cover care outside its network in full: this is the charge above "
            "the amount your plan allows, which an out-of-network provider may bill you.",
        ),
    )
)

#: Group-level words for an amount the patient does not owe (printed as such, if at all).
NOT_OWED: dict[str, str] = {
    "CO": "Your provider's contract with your plan covers this amount; you do not owe it.",
    "OA": "An adjustment your plan made for a reason other than your share; you do not owe it.",
    "PI": "Your plan reduced the payment; this is not billed to you.",
    "CR": "A correction to an earlier payment on your claim; you do not owe it.",
}
#: A few (group, CARC) pairs whose own words are clearer than the group's.
NOT_OWED_BY_REASON: dict[tuple[str, str], str] = {
    ("CO", "45"): "This is the discount your provider agreed with your plan; you do not owe it.",
    ("OA", "23"): "Your other insurance already paid or adjusted this part; you do not owe it.",
    ("CO", "253"): "A federal payment reduction (sequestration); you do not owe it.",
}

_YOUR_SHARE = ("Your share", "Your plan says this part is yours to pay.")


def explain(group: str, reason: str, *, balance_billing: bool = False) -> Explanation:
    """The patient's explanation of one CAS (group, CARC) pair.

    ``balance_billing``: the plan (payer) lets the provider bill the amount above the
    allowed amount (out of network); without it PR-45 is not billable.
    """
    group, reason = group.strip().upper(), reason.strip().upper()
    if group in NOT_PATIENT_GROUPS:
        text = NOT_OWED_BY_REASON.get((group, reason)) or NOT_OWED[group]
        return Explanation(group, reason, "Not yours to pay", text, billable=False)
    if group != "PR":
        return Explanation(group, reason, "Not yours to pay", NOT_OWED["OA"], billable=False)
    label, text = PATIENT_SHARE.get((group, reason), _YOUR_SHARE)
    billable = reason != ABOVE_ALLOWED_CARC or balance_billing
    return Explanation(group, reason, label, text, billable=billable)


def is_billable(group: str, reason: str, *, balance_billing: bool = False) -> bool:
    """May an amount of this (group, CARC) be billed to the patient?"""
    return explain(group, reason, balance_billing=balance_billing).billable
