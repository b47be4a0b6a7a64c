"""What a biller should do about an adjustment: the denial playbook turned into one decision.

The code texts and the playbook's per-code actions live in ``coding/adjustment_codes.py``
(built from ``shared/DENIAL_PLAYBOOK.md``); this module picks one action for a given group
code, CARC and RARCs, and says why. The vocabulary is the playbook's, in five verbs plus
``review`` for the playbook's POST (nothing to bill or fix: a duplicate, a previously paid
claim, a crossover whose payment is still coming):

=====================  =====================================================================
action                 playbook code
=====================  =====================================================================
correct_and_resubmit   NEW (new original claim, frequency 1) or REPL7 (frequency 7 + REF*F8)
appeal                 APPEAL (reconsideration / redetermination with records)
bill_secondary         BILL-SEC (the secondary, or the payer that is really responsible)
bill_patient           BILL-PT
write_off              WO
review                 POST
=====================  =====================================================================

Rules applied on top of the per-code action, each from the playbook:

- MA130 (unprocessable, no appeal rights): send a new original claim, never an appeal.
- MA18 / MA07 (crossed over to the supplemental insurer / Medicaid): do not bill the
  secondary ourselves; wait for its payment (review).
- N781 / N782 (QMB): never bill the deductible or coinsurance to the patient.
- N211 (no appeal rights), N111 (duplicate-only appeal rights): no appeal.
- CO, PI and OA amounts may not be billed to the patient; PR amounts are billed, not
  written off (PR-96: bill the patient rather than write off).
- Between "bill the secondary" and "bill the patient", the secondary wins when the patient
  has another coverage and loses when there is none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import NamedTuple

from coding.adjustment_codes import AdjustmentCode, lookup


class RecommendedAction(StrEnum):
    """The next step for a work item (see the module docstring for the playbook mapping)."""

    CORRECT_AND_RESUBMIT = "correct_and_resubmit"
    APPEAL = "appeal"
    BILL_SECONDARY = "bill_secondary"
    BILL_PATIENT = "bill_patient"
    WRITE_OFF = "write_off"
    REVIEW = "review"


class Recommendation(NamedTuple):
    """``(action, explanation)``: the action and a biller-facing explanation of the codes."""

    action: RecommendedAction
    explanation: str


#: Playbook action codes to our actions.
PLAYBOOK_ACTIONS: dict[str, RecommendedAction] = {
    "NEW": RecommendedAction.CORRECT_AND_RESUBMIT,
    "REPL7": RecommendedAction.CORRECT_AND_RESUBMIT,
    "APPEAL": RecommendedAction.APPEAL,
    "BILL-SEC": RecommendedAction.BILL_SECONDARY,
    "BILL-PT": RecommendedAction.BILL_PATIENT,
    "WO": RecommendedAction.WRITE_OFF,
    "POST": RecommendedAction.REVIEW,
}

#: When one claim carries several codes, the action that needs a person most wins: a fix
#: or an appeal can recover the money, billing moves it, a write-off gives it up.
ACTION_PRIORITY: dict[RecommendedAction, int] = {
    RecommendedAction.CORRECT_AND_RESUBMIT: 0,
    RecommendedAction.APPEAL: 1,
    RecommendedAction.BILL_SECONDARY: 2,
    RecommendedAction.BILL_PATIENT: 3,
    RecommendedAction.REVIEW: 4,
    RecommendedAction.WRITE_OFF: 5,
}

_LABELS: dict[str, str] = {
    "NEW": "correct and resubmit as a new original claim (frequency 1)",
    "REPL7": "correct and send a replacement claim (frequency 7 with REF*F8 = the payer's claim number)",
    "APPEAL": "appeal",
    "BILL-SEC": "bill the secondary (or responsible) payer",
    "BILL-PT": "bill the patient",
    "WO": "write off",
    "POST": "review, nothing to bill",
}

#: Groups whose amounts the patient may not be billed for (playbook, group codes).
_NOT_PATIENT_BILLABLE = frozenset({"CO", "PI", "OA"})
_CROSSOVER_RARCS = frozenset({"MA18", "MA07"})
_QMB_RARCS = frozenset({"N781", "N782"})
_NO_APPEAL_RARCS = frozenset({"N211", "N111"})


def _normalize(code: str | None) -> str:
    return (code or "").strip().upper()


def _candidates(group: str, carc: AdjustmentCode | None, rarcs: Sequence[AdjustmentCode]) -> list[str]:
    """The playbook actions in preference order: the CARC's, else the remark's, else the group's."""
    if carc is not None and carc.actions:
        return list(carc.actions)
    for remark in rarcs:
        if remark.actions:
            return list(remark.actions)
    group_code = lookup("group", group)
    return list(group_code.actions) if group_code is not None else []


def _apply_rules(
    group: str, candidates: list[str], rarc_codes: set[str], has_other_coverage: bool
) -> tuple[str, list[str]]:
    """Narrow the candidates by the playbook's rules; return the chosen code and the reasons."""
    notes: list[str] = []
    if "MA130" in rarc_codes:
        return "NEW", ["MA130: unprocessable as sent and without appeal rights, so a new claim is the remedy"]
    if rarc_codes & _CROSSOVER_RARCS and ("BILL-SEC" in candidates or group == "PR"):
        notes.append("crossed over (MA18/MA07): the supplemental payer was billed by this payer; wait for it")
        return "POST", notes
    if rarc_codes & _NO_APPEAL_RARCS and "APPEAL" in candidates:
        candidates = [c for c in candidates if c != "APPEAL"]
        notes.append("no appeal rights (N211/N111)")
    if rarc_codes & _QMB_RARCS:
        candidates = [c for c in candidates if c != "BILL-PT"] or ["BILL-SEC"]
        notes.append("QMB patient (N781/N782): the patient may not be billed")
    if group in _NOT_PATIENT_BILLABLE and "BILL-PT" in candidates:
        candidates = [c for c in candidates if c != "BILL-PT"]
        notes.append(f"group {group}: the patient may not be billed")
    if group == "PR":
        kept = [c for c in candidates if c != "WO"]
        if not any(c in ("BILL-PT", "BILL-SEC") for c in kept):
            kept = ["BILL-SEC", "BILL-PT", *kept]
        candidates = kept
    if "BILL-SEC" in candidates and "BILL-PT" in candidates:
        drop = "BILL-PT" if has_other_coverage else "BILL-SEC"
        candidates = [c for c in candidates if c != drop]
        notes.append(
            "the patient has another coverage" if has_other_coverage else "no other coverage on file"
        )
    return (candidates[0] if candidates else "POST"), notes


def recommend_action(
    group: str, carc: str, rarcs: Iterable[str] = (), *, has_other_coverage: bool = False
) -> Recommendation:
    """The next step for one adjustment (``group`` CAS01, ``carc`` CAS02, remark codes), and why.

    Unknown codes never raise: an unknown CARC falls back to the remark codes, then to the
    group code, then to ``review`` (a person looks at it), and the explanation says so.
    """
    group_code = _normalize(group)
    carc_code = _normalize(carc)
    rarc_codes = [_normalize(r) for r in rarcs if _normalize(r)]
    carc_entry = lookup("carc", carc_code) if carc_code else None
    rarc_entries = [entry for entry in (lookup("rarc", r) for r in rarc_codes) if entry is not None]
    choice, notes = _apply_rules(
        group_code, _candidates(group_code, carc_entry, rarc_entries), set(rarc_codes), has_other_coverage
    )

    parts: list[str] = []
    label = f"{group_code}-{carc_code}" if group_code and carc_code else (carc_code or group_code or "?")
    if carc_entry is not None:
        parts.append(f"{label}: {carc_entry.meaning}.")
    elif carc_code:
        parts.append(f"{label}: reason code not in our playbook; check the payer's remark.")
    group_entry = lookup("group", group_code)
    if group_entry is not None:
        parts.append(f"Group {group_code}: {group_entry.meaning}.")
    for code in rarc_codes:
        entry = lookup("rarc", code)
        parts.append(
            f"{code}: {entry.meaning}." if entry is not None else f"{code}: remark code not in our playbook."
        )
    parts.append(f"Recommended: {_LABELS[choice]}" + (f" ({'; '.join(notes)})." if notes else "."))
    guidance = carc_entry.biller_action if carc_entry is not None and carc_entry.actions else None
    if guidance is None:
        guidance = next((entry.biller_action for entry in rarc_entries if entry.actions), None)
    if guidance:
        parts.append(f"Playbook: {guidance}")
    return Recommendation(PLAYBOOK_ACTIONS[choice], " ".join(parts))


def recommend_for_codes(
    reasons: Iterable[tuple[str, str]], rarcs: Iterable[str] = (), *, has_other_coverage: bool = False
) -> Recommendation:
    """One recommendation for a claim with several ``(group, carc)`` adjustments.

    Each code gets its own recommendation; the one with the most urgent action
    (``ACTION_PRIORITY``) leads, and the explanation lists every distinct code once.
    With no codes at all (a CLP02 = 4 without CAS), a person reviews the remark codes.
    """
    remarks = list(rarcs)
    unique = list(dict.fromkeys((_normalize(g), _normalize(c)) for g, c in reasons))
    if not unique:
        return recommend_action("", "", remarks, has_other_coverage=has_other_coverage)
    scored = [recommend_action(g, c, remarks, has_other_coverage=has_other_coverage) for g, c in unique]
    ordered = sorted(range(len(scored)), key=lambda i: ACTION_PRIORITY[scored[i].action])
    lead = scored[ordered[0]]
    others = [f"{unique[i][0]}-{unique[i][1]} → {scored[i].action.value}" for i in ordered[1:]]
    explanation = lead.explanation + (f" Other codes on the claim: {', '.join(others)}." if others else "")
    return Recommendation(lead.action, explanation)


def reason_code_labels(reasons: Iterable[tuple[str, str]], rarcs: Iterable[str] = ()) -> list[str]:
    """``["CO-16", "N290"]``: the codes as a work item stores them, each once, in order."""
    labels = [f"{_normalize(g)}-{_normalize(c)}" for g, c in reasons]
    labels.extend(_normalize(r) for r in rarcs)
    return list(dict.fromkeys(label for label in labels if label.strip("-")))
