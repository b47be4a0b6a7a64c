"""Claim status codes (code source 508, STC01-2) and entity codes, explained for a biller.

The 277CA says *why* a claim came back in ``category:status:entity`` composites
(``A7:562:85`` = invalid information: the NPI of the billing provider). Descriptions are
paraphrased in our own words; the recommended action is what a biller does next, and
goes into the rejection's work item. Categories (A1, A7 ...) are described by
``edi.x277ca.CATEGORIES``.
"""

from __future__ import annotations

from edi.x277ca import CATEGORIES

#: Status code -> (what it means, what the biller does about it).
STATUS_CODES: dict[str, tuple[str, str]] = {
    "0": ("the payer gave no further detail", "Call the payer or clearinghouse for the reason."),
    "3": ("claim has been adjudicated and is awaiting payment", "No action; wait for the 835."),
    "15": ("the claim's charge amount is missing or invalid", "Correct the claim and line charges; resend."),
    "19": ("the entity acknowledges receipt of the claim", "No action."),
    "20": ("accepted for processing", "No action; wait for the 835."),
    "21": (
        "information is missing or invalid",
        "Read the other status codes and the free text; correct the named data and resend.",
    ),
    "33": ("subscriber and subscriber id not found", "Verify eligibility (270/271) and the member id."),
    "35": ("the claim or encounter was not found", "Resend the claim."),
    "42": ("the payer's system is unavailable", "Resend later; no correction needed."),
    "54": ("duplicate of a claim already received", "Do not resend; track the original claim."),
    "116": ("the claim was submitted to the wrong payer", "Send the claim to the patient's correct payer."),
    "145": ("entity's specialty or taxonomy code is missing or invalid", "Correct the taxonomy (PRV)."),
    "153": ("entity's identifier is missing or invalid", "Correct the identifier the entity code names."),
    "164": (
        "entity's contract or member number is missing or invalid",
        "Correct the member id on the coverage.",
    ),
    "187": ("a date of service is missing or invalid", "Correct the service dates (DTP*472)."),
    "247": ("line information is missing or invalid", "Correct the service line named."),
    "250": (
        "the diagnosis code is missing or invalid",
        "Use a billable ICD-10-CM code valid on the date of service.",
    ),
    "254": (
        "the principal diagnosis code is missing or invalid",
        "Put a billable, non-external-cause principal diagnosis first (ABK).",
    ),
    "400": ("the claim was already processed", "Check the 835 for the original; do not resend."),
    "454": ("procedure code is not valid for the service date", "Use a procedure code valid on the date."),
    "460": (
        "payer requires a prior authorization number",
        "Obtain and enter the authorization (REF*G1); resend.",
    ),
    "479": (
        "a procedure or service requires information that is missing",
        "Add what the procedure needs (e.g. the NDC for a drug code, LIN/CTP); resend.",
    ),
    "510": ("the service date is outside the coverage period", "Verify eligibility for the date of service."),
    "562": (
        "the entity's National Provider Identifier (NPI) is missing or invalid",
        "Correct the NPI the entity code names (10 digits, valid check digit, enrolled with the payer); resend.",
    ),
    "673": ("patient control number is missing or invalid", "Correct CLM01 (at most 20 characters); resend."),
    "732": (
        "the claim's total charge does not equal the sum of its lines",
        "Recompute CLM02 = Σ SV102; resend.",
    ),
}

#: Entity identifier codes (STC01-3, NM101) used in rejections.
ENTITIES: dict[str, str] = {
    "41": "submitter",
    "40": "receiver",
    "85": "billing provider",
    "82": "rendering provider",
    "DN": "referring provider",
    "DQ": "supervising provider",
    "77": "service facility",
    "IL": "subscriber",
    "QC": "patient",
    "PR": "payer",
}


def explain(category: str, status: str, entity: str = "") -> str:
    """One sentence for a ``category:status:entity`` composite, e.g. for A7:562:85."""
    cat = CATEGORIES.get(category, ("unknown", "an unknown status category"))[1]
    meaning = STATUS_CODES.get(status, ("status code not in our table",))[0]
    who = f" ({ENTITIES.get(entity, 'entity ' + entity)})" if entity else ""
    return f"{category}: {cat}; {status}: {meaning}{who}"


def recommended_action(statuses: list[tuple[str, str, str]]) -> str:
    """What to do about a rejection, from its most specific status code."""
    actions = [
        STATUS_CODES[code][1] for _, code, _ in statuses if code in STATUS_CODES and code not in ("0", "21")
    ]
    if not actions:
        actions = [STATUS_CODES[code][1] for _, code, _ in statuses if code in STATUS_CODES]
    if not actions:
        return "Read the rejection's status codes, correct the claim and resend it."
    return " ".join(dict.fromkeys(actions))
