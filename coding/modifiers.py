"""Procedure modifiers: CPT (numeric, with the project's own short labels), HCPCS Level II
(from the CMS data), and the groups the NCCI edits care about.

The CPT labels below are written for this project (the AMA's descriptors are
copyrighted); they say what a biller needs to know, not the official wording.
"""

from __future__ import annotations

from datetime import date

from coding import hcpcs

CPT_MODIFIERS: dict[str, str] = {
    "22": "Increased procedural work",
    "23": "Unusual anesthesia",
    "24": "Unrelated E/M during a postoperative period",
    "25": "Separate, significant E/M on the day of a procedure",
    "26": "Professional component only",
    "27": "Multiple outpatient hospital E/M encounters on one day",
    "32": "Service mandated by a third party",
    "33": "Preventive service",
    "47": "Anesthesia given by the surgeon",
    "50": "Bilateral procedure",
    "51": "Multiple procedures",
    "52": "Reduced services",
    "53": "Procedure discontinued by the physician",
    "54": "Surgical care only",
    "55": "Postoperative management only",
    "56": "Preoperative management only",
    "57": "Decision for surgery",
    "58": "Staged or related procedure in the postoperative period",
    "59": "Distinct procedural service",
    "62": "Two surgeons",
    "63": "Procedure on an infant under 4 kg",
    "66": "Surgical team",
    "73": "Outpatient procedure stopped before anesthesia",
    "74": "Outpatient procedure stopped after anesthesia",
    "76": "Repeat procedure by the same physician",
    "77": "Repeat procedure by another physician",
    "78": "Unplanned return to the operating room in the postoperative period",
    "79": "Unrelated procedure in the postoperative period",
    "80": "Assistant surgeon",
    "81": "Minimum assistant surgeon",
    "82": "Assistant surgeon when no qualified resident was available",
    "90": "Reference (outside) laboratory",
    "91": "Repeat clinical laboratory test",
    "92": "Alternative laboratory platform testing",
    "93": "Synchronous telemedicine, audio only",
    "95": "Synchronous telemedicine, audio and video",
    "96": "Habilitative service",
    "97": "Rehabilitative service",
    "99": "Multiple modifiers",
    "P1": "Anesthesia: normal healthy patient",
    "P2": "Anesthesia: patient with mild systemic disease",
    "P3": "Anesthesia: patient with severe systemic disease",
    "P4": "Anesthesia: severe systemic disease, constant threat to life",
    "P5": "Anesthesia: moribund patient",
    "P6": "Anesthesia: brain-dead organ donor",
    "1P": "Performance measure exclusion: medical reasons",
    "2P": "Performance measure exclusion: patient reasons",
    "3P": "Performance measure exclusion: system reasons",
    "8P": "Performance measure reporting: action not performed, reason not specified",
}

# Anatomic modifiers (NCCI Policy Manual, chapter I, "Modifiers and Modifier Indicators").
ANATOMIC_MODIFIERS: frozenset[str] = frozenset(
    ("E1", "E2", "E3", "E4", "FA", "TA", "LT", "RT", "LC", "LD", "LM", "RC", "RI")
) | frozenset(f"{side}{i}" for side in "FT" for i in range(1, 10))
# Modifiers that may bypass a PTP edit whose modifier indicator is 1: the anatomic ones,
# the global-surgery ones (24, 25, 57, 58, 78, 79) and 27, 59, 91, XE, XP, XS, XU
# (same NCCI manual section). 25 only bypasses an edit whose column-1 or column-2 code
# is an E/M; payers read that rule from their own edit data, so it is listed here.
PTP_BYPASS_MODIFIERS: frozenset[str] = ANATOMIC_MODIFIERS | frozenset(
    ["24", "25", "27", "57", "58", "59", "78", "79", "91", "XE", "XP", "XS", "XU"]
)
# The distinct-service subset CMS prefers over 59 since 2015 (MLN1783722).
X_MODIFIERS: frozenset[str] = frozenset(["XE", "XP", "XS", "XU"])
# Modifiers that mark a repeat of the same service on one day (split-line MUE handling).
REPEAT_MODIFIERS: frozenset[str] = frozenset(["76", "77", "91"])


def label(modifier: str) -> str | None:
    """A short label for any known modifier (CPT or HCPCS Level II)."""
    modifier = modifier.strip().upper()
    if modifier in CPT_MODIFIERS:
        return CPT_MODIFIERS[modifier]
    found = hcpcs.default().modifier(modifier)
    return found.short_description if found else None


def is_valid(modifier: str, dos: date | None = None) -> bool:
    """A CPT modifier, or a HCPCS Level II modifier valid on the DOS (any date if None)."""
    modifier = modifier.strip().upper()
    if modifier in CPT_MODIFIERS:
        return True
    codes = hcpcs.default()
    if dos is None:
        return codes.modifier(modifier) is not None
    return codes.is_valid_modifier(modifier, dos)


def bypasses_ptp(modifiers: tuple[str, ...] | list[str]) -> bool:
    """Whether any modifier on a line can bypass a PTP edit with modifier indicator 1."""
    return any(m.upper() in PTP_BYPASS_MODIFIERS for m in modifiers)
