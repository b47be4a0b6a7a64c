"""Small reference code sets on every claim: place of service, claim frequency, US
states, taxonomy format, ZIP, NPI.

Sources: CMS Place of Service Code Set (cms.gov, "Place of Service Codes for
Professional Claims", as of the October 2025 update); X12 code source 235 for claim
frequency type codes (CLM05-3); USPS state and territory abbreviations; NUCC Health
Care Provider Taxonomy code structure (10 characters, the last one "X"); NPI check
digit via ``edi.identifiers``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from edi.identifiers import is_valid_npi, is_valid_zip


@dataclass(frozen=True, slots=True)
class PlaceOfService:
    code: str
    name: str
    effective_from: date | None = None  # None: in force before ICD-10 (2015) already

    def valid_on(self, dos: date) -> bool:
        return self.effective_from is None or dos >= self.effective_from


_POS: tuple[tuple[str, str, date | None], ...] = (
    ("01", "Pharmacy", None),
    ("02", "Telehealth provided other than in patient's home", None),
    ("03", "School", None),
    ("04", "Homeless shelter", None),
    ("05", "Indian Health Service free-standing facility", None),
    ("06", "Indian Health Service provider-based facility", None),
    ("07", "Tribal 638 free-standing facility", None),
    ("08", "Tribal 638 provider-based facility", None),
    ("09", "Prison/correctional facility", None),
    ("10", "Telehealth provided in patient's home", date(2022, 1, 1)),
    ("11", "Office", None),
    ("12", "Home", None),
    ("13", "Assisted living facility", None),
    ("14", "Group home", None),
    ("15", "Mobile unit", None),
    ("16", "Temporary lodging", None),
    ("17", "Walk-in retail health clinic", None),
    ("18", "Place of employment/worksite", None),
    ("19", "Off campus-outpatient hospital", None),
    ("20", "Urgent care facility", None),
    ("21", "Inpatient hospital", None),
    ("22", "On campus-outpatient hospital", None),
    ("23", "Emergency room - hospital", None),
    ("24", "Ambulatory surgical center", None),
    ("25", "Birthing center", None),
    ("26", "Military treatment facility", None),
    ("27", "Outreach site/street", date(2023, 10, 1)),
    ("31", "Skilled nursing facility", None),
    ("32", "Nursing facility", None),
    ("33", "Custodial care facility", None),
    ("34", "Hospice", None),
    ("41", "Ambulance - land", None),
    ("42", "Ambulance - air or water", None),
    ("49", "Independent clinic", None),
    ("50", "Federally qualified health center", None),
    ("51", "Inpatient psychiatric facility", None),
    ("52", "Psychiatric facility - partial hospitalization", None),
    ("53", "Community mental health center", None),
    ("54", "Intermediate care facility/individuals with intellectual disabilities", None),
    ("55", "Residential substance abuse treatment facility", None),
    ("56", "Psychiatric residential treatment center", None),
    ("57", "Non-residential substance abuse treatment facility", None),
    ("58", "Non-residential opioid treatment facility", date(2020, 1, 1)),
    ("60", "Mass immunization center", None),
    ("61", "Comprehensive inpatient rehabilitation facility", None),
    ("62", "Comprehensive outpatient rehabilitation facility", None),
    ("65", "End-stage renal disease treatment facility", None),
    ("66", "Programs of All-Inclusive Care for the Elderly (PACE) center", date(2024, 10, 1)),
    ("71", "Public health clinic", None),
    ("72", "Rural health clinic", None),
    ("81", "Independent laboratory", None),
    ("99", "Other place of service", None),
)
PLACES_OF_SERVICE: dict[str, PlaceOfService] = {code: PlaceOfService(code, n, d) for code, n, d in _POS}


def place_of_service(code: str) -> PlaceOfService | None:
    return PLACES_OF_SERVICE.get(code.strip())


def is_valid_place_of_service(code: str, dos: date | None = None) -> bool:
    pos = PLACES_OF_SERVICE.get(code.strip()) if code else None
    return pos is not None and (dos is None or pos.valid_on(dos))


# Claim frequency type codes (CLM05-3). The 837P uses 1, 7 and 8; the others are
# institutional (type-of-bill third digit) and listed so the 837I side can share them.
CLAIM_FREQUENCY_CODES: dict[str, str] = {
    "0": "Non-payment/zero claim",
    "1": "Original claim (admit through discharge)",
    "2": "Interim - first claim",
    "3": "Interim - continuing claim",
    "4": "Interim - last claim",
    "5": "Late charges only",
    "6": "Corrected claim (adjustment of a prior claim)",
    "7": "Replacement of a prior claim",
    "8": "Void/cancel of a prior claim",
    "9": "Final claim for a home health PPS episode",
}
PROFESSIONAL_FREQUENCY_CODES: frozenset[str] = frozenset({"1", "7", "8"})
FREQUENCY_NEEDS_ORIGINAL: frozenset[str] = frozenset({"7", "8"})


def is_valid_frequency_code(code: str, *, professional: bool = True) -> bool:
    if professional:
        return code in PROFESSIONAL_FREQUENCY_CODES
    return code in CLAIM_FREQUENCY_CODES


US_STATES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa",
    "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
    "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi",
    "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire",
    "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York", "NC": "North Carolina",
    "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee",
    "TX": "Texas", "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington",
    "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "DC": "District of Columbia",
}  # fmt: skip
US_TERRITORIES: dict[str, str] = {
    "AS": "American Samoa",
    "GU": "Guam",
    "MP": "Northern Mariana Islands",
    "PR": "Puerto Rico",
    "VI": "U.S. Virgin Islands",
    # Freely associated states and military post offices use US ZIP codes too.
    "FM": "Federated States of Micronesia",
    "MH": "Marshall Islands",
    "PW": "Palau",
    "AA": "Armed Forces Americas",
    "AE": "Armed Forces Europe",
    "AP": "Armed Forces Pacific",
}


def is_valid_state(code: str | None) -> bool:
    return bool(code) and (code in US_STATES or code in US_TERRITORIES)  # type: ignore[operator]


_TAXONOMY = re.compile(r"^[0-9A-Z]{9}X$")


def is_valid_taxonomy(code: str | None) -> bool:
    """NUCC taxonomy format: 10 characters, nine letters/digits then ``X`` (e.g. 207Q00000X)."""
    return bool(code) and bool(_TAXONOMY.match(code))  # type: ignore[arg-type]


__all__ = [
    "CLAIM_FREQUENCY_CODES",
    "FREQUENCY_NEEDS_ORIGINAL",
    "PLACES_OF_SERVICE",
    "PROFESSIONAL_FREQUENCY_CODES",
    "US_STATES",
    "US_TERRITORIES",
    "PlaceOfService",
    "is_valid_frequency_code",
    "is_valid_npi",
    "is_valid_place_of_service",
    "is_valid_state",
    "is_valid_taxonomy",
    "is_valid_zip",
    "place_of_service",
]
