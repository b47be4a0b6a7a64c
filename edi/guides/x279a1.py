"""005010X279A1 (270 eligibility inquiry, 271 eligibility response) as a compact table.

pyx12 has no 5010 270/271 map (its issues #60/#62, open since 2019), so the guide's
loops, segments, usages, repeats and code values are written down here from the TR3
and compiled into an :class:`edi.maps.CompiledMap`; :mod:`edi.validate` walks it like
any pyx12 map. Only what the TR3 fixes is listed: code lists where the guide names
them, situational (``S``) where the guide says "required when ...".

Service type codes (EQ01, EB03) are checked for their form (1-2 characters, letters
and digits) rather than against a frozen list: the code source (X12 1365) grows every
release, and a stale list would reject good answers (the problem EDI_NOTES records for
pyx12's frozen ``codes.xml``).

Table shapes: ``E(usage, type, min, max, codes, name)`` is a simple element,
``C(usage, name, components)`` a composite, ``S(id, usage, max_use, pos, name, elements,
syntax)`` a segment, ``L(id, usage, repeat, pos, name, children)`` a loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from edi.maps import UNBOUNDED, CompiledMap, CompositeSpec, ElementSpec, LoopSpec, SegmentSpec, _Compiler

IMPLEMENTATION = "005010X279A1"
SERVICE_TYPE_PATTERN = r"^[A-Z0-9]{1,2}$"
N = UNBOUNDED


@dataclass(frozen=True, slots=True)
class E:
    usage: str
    type: str
    min: int
    max: int
    codes: str = ""
    name: str = ""
    repeat: int = 1
    data_element: str = ""
    regex: str | None = None


@dataclass(frozen=True, slots=True)
class C:
    usage: str
    name: str
    components: tuple[E, ...]
    repeat: int = 1


@dataclass(frozen=True, slots=True)
class S:
    id: str
    usage: str
    max_use: int
    pos: int
    name: str
    elements: tuple[E | C, ...]
    syntax: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class L:
    id: str
    usage: str
    repeat: int
    pos: int
    name: str
    children: tuple[S | L, ...]


NOT_USED = E("N", "AN", 1, 1)
DATE_FORMAT = E("R", "ID", 2, 3, "D8 RD8", "Date Time Period Format Qualifier", data_element="1250")
DATE_PERIOD = E("R", "AN", 1, 35, "", "Date Time Period", data_element="1251")
ENTITY_ID_QUALIFIER = "24 34 46 FI II MI NI PI PP SV XV XX"
SERVICE_TYPE = E("S", "ID", 1, 2, "", "Service Type Code", 99, regex=SERVICE_TYPE_PATTERN)

# Composites shared by EQ/EB/III/HI.
PROCEDURE = C(
    "S",
    "Composite Medical Procedure Identifier",
    (
        E("R", "ID", 2, 2, "AD CJ HC ID IV N4 ZZ", "Product or Service ID Qualifier"),
        E("R", "AN", 1, 48, "", "Procedure Code"),
        E("S", "AN", 2, 2, "", "Procedure Modifier"),
        E("S", "AN", 2, 2, "", "Procedure Modifier"),
        E("S", "AN", 2, 2, "", "Procedure Modifier"),
        E("S", "AN", 2, 2, "", "Procedure Modifier"),
        E("N", "AN", 1, 80, "", "Description"),
        E("S", "AN", 1, 48, "", "Procedure Code"),
    ),
)
DIAGNOSIS_POINTER = C(
    "S",
    "Composite Diagnosis Code Pointer",
    tuple(E("R" if i == 0 else "S", "N0", 1, 2, "", "Diagnosis Code Pointer") for i in range(4)),
)


def _health_code(usage: str) -> C:
    return C(
        usage,
        "Health Care Code Information",
        (
            E("R", "ID", 1, 3, "ABK ABF BK BF", "Code List Qualifier Code"),
            E("R", "AN", 1, 30, "", "Industry Code"),
            NOT_USED,
            NOT_USED,
            NOT_USED,
            NOT_USED,
            NOT_USED,
            NOT_USED,
            NOT_USED,
        ),
    )


def _st(st01: str) -> S:
    return S(
        "ST",
        "R",
        1,
        100,
        "Transaction Set Header",
        (
            E("R", "ID", 3, 3, st01, "Transaction Set Identifier Code"),
            E("R", "AN", 4, 9, "", "Transaction Set Control Number"),
            E("R", "AN", 1, 35, IMPLEMENTATION, "Implementation Convention Reference"),
        ),
    )


def _bht(purposes: str) -> S:
    return S(
        "BHT",
        "R",
        1,
        200,
        "Beginning of Hierarchical Transaction",
        (
            E("R", "ID", 4, 4, "0022", "Hierarchical Structure Code"),
            E("R", "ID", 2, 2, purposes, "Transaction Set Purpose Code"),
            E("S", "AN", 1, 50, "", "Submitter Transactional Identifier"),
            E("R", "DT", 8, 8, "", "Transaction Set Creation Date"),
            E("R", "TM", 4, 8, "", "Transaction Set Creation Time"),
            E("N", "ID", 2, 2, "", "Transaction Type Code"),
        ),
    )


def _hl(level: str, child_codes: str, parent: str) -> S:
    return S(
        "HL",
        "R",
        1,
        100,
        "Hierarchical Level",
        (
            E("R", "AN", 1, 12, "", "Hierarchical ID Number"),
            E(parent, "AN", 1, 12, "", "Hierarchical Parent ID Number"),
            E("R", "ID", 1, 2, level, "Hierarchical Level Code"),
            E("R", "ID", 1, 1, child_codes, "Hierarchical Child Code"),
        ),
    )


def _trn(max_use: int, types: str) -> S:
    return S(
        "TRN",
        "S",
        max_use,
        200,
        "Trace",
        (
            E("R", "ID", 1, 2, types, "Trace Type Code"),
            E("R", "AN", 1, 50, "", "Reference Identification (trace number)"),
            E("R", "AN", 10, 10, "", "Originating Company Identifier"),
            E("S", "AN", 1, 50, "", "Reference Identification (secondary)"),
        ),
    )


def _nm1(pos: int, entities: str, kinds: str, *, name_usage: str = "S", id_usage: str = "R") -> S:
    return S(
        "NM1",
        "R",
        1,
        pos,
        "Individual or Organizational Name",
        (
            E("R", "ID", 2, 3, entities, "Entity Identifier Code"),
            E("R", "ID", 1, 1, kinds, "Entity Type Qualifier"),
            E(name_usage, "AN", 1, 60, "", "Name Last or Organization Name"),
            E("S", "AN", 1, 35, "", "Name First"),
            E("S", "AN", 1, 25, "", "Name Middle"),
            NOT_USED,
            E("S", "AN", 1, 10, "", "Name Suffix"),
            E(id_usage, "ID", 1, 2, ENTITY_ID_QUALIFIER, "Identification Code Qualifier"),
            E(id_usage, "AN", 2, 80, "", "Identification Code"),
            NOT_USED,
            NOT_USED,
            NOT_USED,
        ),
        ("P0809",),
    )


def _ref(pos: int, max_use: int, qualifiers: str) -> S:
    return S(
        "REF",
        "S",
        max_use,
        pos,
        "Reference Identification",
        (
            E("R", "ID", 2, 3, qualifiers, "Reference Identification Qualifier"),
            E("R", "AN", 1, 50, "", "Reference Identification"),
            E("S", "AN", 1, 80, "", "Description"),
        ),
    )


N3 = S(
    "N3",
    "S",
    1,
    600,
    "Address Information",
    (E("R", "AN", 1, 55, "", "Address Information"), E("S", "AN", 1, 55, "", "Address Information")),
)
N4 = S(
    "N4",
    "S",
    1,
    700,
    "Geographic Location",
    (
        E("R", "AN", 2, 30, "", "City Name"),
        E("S", "ID", 2, 2, "", "State or Province Code"),
        E("S", "ID", 3, 15, "", "Postal Code"),
        E("S", "ID", 2, 3, "", "Country Code"),
        NOT_USED,
        NOT_USED,
        E("S", "ID", 1, 3, "", "Country Subdivision Code"),
    ),
    ("E0207", "C0605", "C0704"),
)
PRV = S(
    "PRV",
    "S",
    1,
    900,
    "Provider Information",
    (
        E(
            "R",
            "ID",
            1,
            3,
            "AD AT BI CO CV H HH LA OT P1 P2 PC PE R RF SB SK SU",
            "Provider Code",
        ),
        E("R", "ID", 2, 3, "PXC", "Reference Identification Qualifier"),
        E("R", "AN", 1, 50, "", "Reference Identification (taxonomy)"),
    ),
)
DMG = S(
    "DMG",
    "S",
    1,
    1000,
    "Demographic Information",
    (
        E("R", "ID", 2, 3, "D8", "Date Time Period Format Qualifier", data_element="1250"),
        E("R", "AN", 1, 35, "", "Date of Birth", data_element="1251"),
        E("S", "ID", 1, 1, "F M U", "Gender Code"),
    ),
    ("P0102",),
)
INS = S(
    "INS",
    "S",
    1,
    1100,
    "Multiple Birth Sequence Number",
    (
        E("R", "ID", 1, 1, "Y N", "Yes/No Condition or Response Code"),
        E("R", "ID", 2, 2, "01 18 19 20 21 39 40 53 G8", "Individual Relationship Code"),
        E("S", "ID", 3, 3, "001", "Maintenance Type Code"),
        E("S", "ID", 2, 3, "25", "Maintenance Reason Code"),
        *(NOT_USED for _ in range(12)),
        E("S", "R", 1, 9, "", "Birth Sequence Number"),
    ),
)
HI = S(
    "HI",
    "S",
    1,
    1150,
    "Health Care Diagnosis Code",
    (_health_code("R"), *(_health_code("S") for _ in range(7))),
)
MPI = S(
    "MPI",
    "S",
    1,
    1250,
    "Military Personnel Information",
    (
        E("R", "ID", 1, 1, "A C D L O P Q R S T U", "Information Status Code"),
        E("R", "ID", 2, 2, "AE AO AR AU CC CG DD DE FS GS IR NA NO RU SC SP", "Employment Status Code"),
        E("R", "ID", 1, 1, "A B C E F G M N O W", "Government Service Affiliation Code"),
        E("S", "AN", 1, 80, "", "Description"),
        E(
            "S",
            "ID",
            1,
            1,
            "A B C D E F G H I J K L M N O P Q R S T U V W X Y Z",
            "Military Service Rank Code",
        ),
        E("S", "ID", 2, 3, "D8 RD8", "Date Time Period Format Qualifier", data_element="1250"),
        E("S", "AN", 1, 35, "", "Date Time Period", data_element="1251"),
    ),
    ("P0607",),
)


def _dtp(pos: int, max_use: int, qualifiers: str) -> S:
    return S(
        "DTP",
        "S",
        max_use,
        pos,
        "Date or Time or Period",
        (E("R", "ID", 3, 3, qualifiers, "Date/Time Qualifier"), DATE_FORMAT, DATE_PERIOD),
    )


def _aaa(pos: int, reasons: str) -> S:
    return S(
        "AAA",
        "S",
        9,
        pos,
        "Request Validation",
        (
            E("R", "ID", 1, 1, "Y N", "Valid Request Indicator"),
            NOT_USED,
            E("R", "ID", 2, 2, reasons, "Reject Reason Code"),
            E("R", "ID", 1, 1, "C N P R S W X Y", "Follow-up Action Code"),
        ),
    )


def _per(pos: int) -> S:
    kinds = "ED EM EX FX TE UR"
    return S(
        "PER",
        "S",
        3,
        pos,
        "Contact Information",
        (
            E("R", "ID", 2, 2, "IC", "Contact Function Code"),
            E("S", "AN", 1, 60, "", "Name"),
            E("S", "ID", 2, 2, kinds, "Communication Number Qualifier"),
            E("S", "AN", 1, 256, "", "Communication Number"),
            E("S", "ID", 2, 2, kinds, "Communication Number Qualifier"),
            E("S", "AN", 1, 256, "", "Communication Number"),
            E("S", "ID", 2, 2, kinds, "Communication Number Qualifier"),
            E("S", "AN", 1, 256, "", "Communication Number"),
        ),
        ("P0304", "P0506", "P0708"),
    )


SE = S(
    "SE",
    "R",
    1,
    5550,
    "Transaction Set Trailer",
    (E("R", "N0", 1, 10, "", "Number of Included Segments"), E("R", "AN", 4, 9, "", "Control Number")),
)

# --------------------------------------------------------------------------------------
# 270
# --------------------------------------------------------------------------------------
SUBSCRIBER_REF_270 = "18 1L 1W 3H 6P CE CT EA EJ F6 GH HJ IG N6 NQ Q4 SY"
EQ = S(
    "EQ",
    "R",
    1,
    100,
    "Subscriber Eligibility or Benefit Inquiry",
    (
        SERVICE_TYPE,
        PROCEDURE,
        E("S", "ID", 3, 3, "FAM IND", "Coverage Level Code"),
        NOT_USED,
        DIAGNOSIS_POINTER,
    ),
    ("R0102",),
)


def _inquiry_loop(loop_id: str) -> L:
    return L(
        loop_id,
        "S",
        99,
        1300,
        "Eligibility or Benefit Inquiry",
        (
            EQ,
            S(
                "AMT",
                "S",
                1,
                1350,
                "Spend Down / Billed Amount",
                (
                    E("R", "ID", 1, 3, "R PB", "Amount Qualifier Code"),
                    E("R", "R", 1, 18, "", "Monetary Amount"),
                ),
            ),
            S(
                "III",
                "S",
                10,
                1700,
                "Eligibility or Benefit Additional Inquiry Information",
                (
                    E("R", "ID", 1, 3, "ZZ", "Code List Qualifier Code"),
                    E("R", "AN", 1, 30, "", "Industry Code (place of service)"),
                ),
            ),
            _ref(1900, 1, "9F G1"),
            _dtp(2000, 1, "291 307 435 472"),
        ),
    )


def _person_270(loop: str, entities: str, *, dependent: bool) -> L:
    suffix = loop[-1]
    return L(
        loop,
        "R",
        1,
        300,
        "Dependent Name" if dependent else "Subscriber Name",
        (
            _nm1(300, entities, "1" if dependent else "1 2", id_usage="N" if dependent else "S"),
            _ref(400, 9, SUBSCRIBER_REF_270),
            N3,
            N4,
            PRV,
            DMG,
            INS,
            HI,
            _dtp(1200, 2, "291 307 435 472"),
            _inquiry_loop(f"2110{suffix}"),
        ),
    )


@cache
def guide_270() -> CompiledMap:
    """The compiled 270 guide (one instance per process)."""
    dependent = L(
        "2000D",
        "S",
        N,
        1600,
        "Dependent Level",
        (_hl("23", "0", "R"), _trn(2, "1"), _person_270("2100D", "03", dependent=True)),
    )
    subscriber = L(
        "2000C",
        "R",
        N,
        1500,
        "Subscriber Level",
        (_hl("22", "0 1", "R"), _trn(2, "1"), _person_270("2100C", "IL", dependent=False), dependent),
    )
    receiver = L(
        "2000B",
        "R",
        N,
        1400,
        "Information Receiver Level",
        (
            _hl("21", "1", "R"),
            L(
                "2100B",
                "R",
                1,
                300,
                "Information Receiver Name",
                (
                    _nm1(300, "1P 2B 36 80 FA GP P5 PR", "1 2"),
                    _ref(400, 9, "0B 1C 1D 1J 4A CT EL EO HPI JD N5 N7 Q4 SY TJ"),
                    N3,
                    N4,
                    PRV,
                ),
            ),
            subscriber,
        ),
    )
    source = L(
        "2000A",
        "R",
        N,
        100,
        "Information Source Level",
        (
            _hl("20", "1", "N"),
            L("2100A", "R", 1, 300, "Information Source Name", (_nm1(300, "2B 36 GP P5 PR", "1 2"),)),
            receiver,
        ),
    )
    return _compile(
        "270", "270 Eligibility, Coverage or Benefit Inquiry (X279A1, claims-server)", "01 13", source
    )


# --------------------------------------------------------------------------------------
# 271
# --------------------------------------------------------------------------------------
EB01 = "1 2 3 4 5 6 7 8 A B C CB D E F G H I J K L M MC N O P Q R S T U V W X Y"
EB = S(
    "EB",
    "R",
    1,
    1300,
    "Subscriber Eligibility or Benefit Information",
    (
        E("R", "ID", 1, 2, EB01, "Eligibility or Benefit Information Code"),
        E("S", "ID", 3, 3, "CHD DEP ECH EMP ESP FAM IND SPC SPO", "Coverage Level Code"),
        SERVICE_TYPE,
        E(
            "S",
            "ID",
            1,
            3,
            "12 13 14 15 16 41 42 43 47 AP C1 CO CP D E EP FF GP HM HN HS IN IP LC LD LI LT MA MB MC MH MI MP "
            "OT PE PL PP PR PS QM RP SP TF WC WU",
            "Insurance Type Code",
        ),
        E("S", "AN", 1, 50, "", "Plan Coverage Description"),
        E(
            "S",
            "ID",
            1,
            2,
            "6 7 13 21 22 23 24 25 26 27 28 29 30 32 33 34 35 36",
            "Time Period Qualifier",
        ),
        E("S", "R", 1, 18, "", "Monetary Amount"),
        E("S", "R", 1, 10, "", "Percent"),
        E(
            "S",
            "ID",
            2,
            2,
            "8H 99 CA CE D3 DB DY HS LA LE M2 MN P6 QA S7 S8 VS YY",
            "Quantity Qualifier",
        ),
        E("S", "R", 1, 15, "", "Quantity"),
        E("S", "ID", 1, 1, "N U Y", "Authorization or Certification Indicator"),
        E("S", "ID", 1, 1, "N U W Y", "In Plan Network Indicator"),
        PROCEDURE,
        DIAGNOSIS_POINTER,
    ),
    ("P0910",),
)
SUBSCRIBER_AAA = (
    "15 35 42 43 45 47 48 49 51 52 56 57 58 60 61 62 63 64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 98 AA AE "
    "AF AG AO CI E8 IA MA"
)
OTHER_ENTITY = (
    "13 1I 1P 2B 36 71 72 73 74 75 76 80 FA GP GW I3 IL LR OC P3 P4 P5 PR PRP SEP TTP VER VN VY X3 Y2"
)


def _benefit_loop(loop: str) -> L:
    suffix = loop[-1]
    return L(
        loop,
        "S",
        N,
        1300,
        "Eligibility or Benefit Information",
        (
            EB,
            S(
                "HSD",
                "S",
                9,
                1350,
                "Health Care Services Delivery",
                (
                    E("S", "ID", 1, 2, "DY FL HS MN VS", "Quantity Qualifier"),
                    E("S", "R", 1, 15, "", "Quantity"),
                    E("S", "ID", 2, 2, "DA MO VS WK YR", "Unit or Basis for Measurement Code"),
                    E("S", "R", 1, 10, "", "Sample Selection Modulus"),
                    E(
                        "S",
                        "ID",
                        1,
                        2,
                        "6 7 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35",
                        "Time Period Qualifier",
                    ),
                    E("S", "N0", 1, 3, "", "Number of Periods"),
                    E(
                        "S",
                        "ID",
                        1,
                        1,
                        "1 2 3 4 5 6 7 8 9 A B C D E F G H J K L M N O P Q R S SA SB SC SD SG SL SP SX "
                        "SY SZ T U V W X Y",
                        "Ship/Delivery or Calendar Pattern Code",
                    ),
                    E("S", "ID", 1, 1, "A B C D E F G Y", "Ship/Delivery Pattern Time Code"),
                ),
                ("P0102", "C0605"),
            ),
            _ref(1400, 9, "18 1L 1W 49 6P 9F ALS CLI F8 FO G1 IG N6 NQ Y4"),
            _dtp(
                1500,
                20,
                "096 193 194 198 290 291 292 295 304 307 318 346 347 348 349 356 357 435 472 636 771",
            ),
            _aaa(1600, "15 33 52 53 54 55 56 57 60 61 62 63 69 70 98 AA AE AF AG"),
            S("MSG", "S", 10, 2500, "Message Text", (E("R", "AN", 1, 264, "", "Free-form Message Text"),)),
            L(
                f"2115{suffix}",
                "S",
                10,
                2600,
                "Eligibility or Benefit Additional Information",
                (
                    S(
                        "III",
                        "R",
                        1,
                        2600,
                        "Eligibility or Benefit Additional Information",
                        (
                            E("S", "ID", 1, 3, "GR NI ZZ", "Code List Qualifier Code"),
                            E("S", "AN", 1, 30, "", "Industry Code"),
                            E("S", "ID", 2, 2, "44", "Code Category"),
                            E("S", "AN", 1, 264, "", "Free-form Message Text"),
                        ),
                        ("P0102", "L030204"),
                    ),
                ),
            ),
            S("LS", "S", 1, 3300, "Loop Header", (E("R", "AN", 1, 4, "2120", "Loop Identifier Code"),)),
            L(
                f"2120{suffix}",
                "S",
                23,
                3400,
                "Benefit Related Entity Name",
                (
                    _nm1(3400, OTHER_ENTITY, "1 2", id_usage="S"),
                    S(N3.id, N3.usage, 1, 3600, N3.name, N3.elements),
                    S(N4.id, N4.usage, 1, 3700, N4.name, N4.elements, N4.syntax),
                    _per(3800),
                    S(PRV.id, PRV.usage, 1, 3900, PRV.name, PRV.elements),
                ),
            ),
            S("LE", "S", 1, 4000, "Loop Trailer", (E("R", "AN", 1, 4, "2120", "Loop Identifier Code"),)),
        ),
    )


def _person_271(loop: str, entities: str, *, dependent: bool) -> L:
    return L(
        loop,
        "R",
        1,
        300,
        "Dependent Name" if dependent else "Subscriber Name",
        (
            _nm1(300, entities, "1" if dependent else "1 2", id_usage="N" if dependent else "S"),
            _ref(400, 9, "18 1L 1W 3H 49 6P CE CT EA EJ F6 GH HJ IF IG ML N6 NQ Q4 SY Y4"),
            N3,
            N4,
            _aaa(850, SUBSCRIBER_AAA),
            PRV,
            DMG,
            INS,
            HI,
            _dtp(
                1200,
                9,
                "102 152 291 307 318 340 341 342 343 346 347 356 357 382 435 442 458 472 539 540 636 771",
            ),
            MPI,
            _benefit_loop(f"2110{loop[-1]}"),
        ),
    )


@cache
def guide_271() -> CompiledMap:
    """The compiled 271 guide (one instance per process)."""
    dependent = L(
        "2000D",
        "S",
        N,
        1600,
        "Dependent Level",
        (_hl("23", "0", "R"), _trn(3, "1 2"), _person_271("2100D", "03", dependent=True)),
    )
    subscriber = L(
        "2000C",
        "S",
        N,
        1500,
        "Subscriber Level",
        (_hl("22", "0 1", "R"), _trn(3, "1 2"), _person_271("2100C", "IL", dependent=False), dependent),
    )
    receiver = L(
        "2000B",
        "S",
        N,
        1400,
        "Information Receiver Level",
        (
            _hl("21", "0 1", "R"),
            L(
                "2100B",
                "R",
                1,
                300,
                "Information Receiver Name",
                (
                    _nm1(300, "1P 2B 36 80 FA GP P5 PR", "1 2"),
                    _ref(400, 9, "0B 1C 1D 1J 4A CT EL EO HPI JD N5 N7 Q4 SY TJ"),
                    _aaa(500, "15 41 43 44 45 46 47 48 50 51 79 97 T4"),
                    PRV,
                ),
            ),
            subscriber,
        ),
    )
    source = L(
        "2000A",
        "R",
        N,
        100,
        "Information Source Level",
        (
            _hl("20", "0 1", "N"),
            _aaa(250, "04 41 42 79"),
            L(
                "2100A",
                "R",
                1,
                300,
                "Information Source Name",
                (_nm1(300, "2B 36 GP P5 PR", "1 2"), _per(400), _aaa(500, "04 41 42 79 80 T4")),
            ),
            receiver,
        ),
    )
    return _compile(
        "271", "271 Eligibility, Coverage or Benefit Information (X279A1, claims-server)", "06 11", source
    )


# --------------------------------------------------------------------------------------
# Compilation into the walker's structures
# --------------------------------------------------------------------------------------
class _Builder:
    def __init__(self) -> None:
        self.uid = 0
        self.places: dict[str, set[tuple[int, int]]] = {}
        self.codes: dict[str, set[str]] = {}

    def next_uid(self) -> int:
        self.uid += 1
        return self.uid

    @staticmethod
    def element(spec: E, segment_id: str, seq: int, sub: int = 0) -> ElementSpec:
        ref = f"{segment_id}{sub:02d}-{seq}" if sub else f"{segment_id}{seq:02d}"
        return ElementSpec(
            ref=ref,
            seq=seq,
            usage=spec.usage,
            data_element=spec.data_element,
            data_type=spec.type,
            min_len=spec.min,
            max_len=spec.max,
            codes=frozenset(spec.codes.split()) if spec.codes else None,
            external=None,
            regex=spec.regex,
            name=spec.name,
            max_use=spec.repeat,
        )

    def segment(self, spec: S, parent: LoopSpec) -> SegmentSpec:
        elements: list[ElementSpec | CompositeSpec] = []
        for seq, item in enumerate(spec.elements, start=1):
            if isinstance(item, C):
                elements.append(
                    CompositeSpec(
                        ref=f"{spec.id}{seq:02d}",
                        seq=seq,
                        usage=item.usage,
                        data_element="",
                        name=item.name,
                        components=tuple(
                            self.element(c, spec.id, index, sub=seq)
                            for index, c in enumerate(item.components, start=1)
                        ),
                        max_use=item.repeat,
                    )
                )
            else:
                elements.append(self.element(item, spec.id, seq))
        syntax = tuple(
            (rule[0], tuple(int(rule[i : i + 2]) for i in range(1, len(rule), 2))) for rule in spec.syntax
        )
        segment = SegmentSpec(
            uid=self.next_uid(),
            id=spec.id,
            usage=spec.usage,
            pos=spec.pos,
            max_use=spec.max_use,
            name=spec.name,
            elements=tuple(elements),
            syntax=syntax,
            qualifier=_Compiler.qualifier(spec.id, elements),
            parent=parent,
        )
        if segment.qualifier is not None:
            index, sub, codes = segment.qualifier
            self.places.setdefault(spec.id, set()).add((index, sub))
            self.codes.setdefault(spec.id, set()).update(codes)
        return segment

    def loop(self, spec: L, parent: LoopSpec | None, kind: str = "implicit") -> LoopSpec:
        loop = LoopSpec(
            uid=self.next_uid(),
            id=spec.id,
            usage=spec.usage,
            pos=spec.pos,
            repeat=spec.repeat,
            name=spec.name,
            kind=kind,
            parent=parent,
        )
        children: list[SegmentSpec | LoopSpec] = [
            self.segment(child, loop) if isinstance(child, S) else self.loop(child, loop)
            for child in spec.children
        ]
        children.sort(key=lambda c: c.pos)
        loop.children = children
        return loop


def _compile(st01: str, title: str, purposes: str, detail_first: L) -> CompiledMap:
    table = L(
        "ST_LOOP",
        "R",
        N,
        200,
        "Transaction Set Header",
        (
            _st(st01),
            L("HEADER", "R", 1, 150, "Table 1 - Header", (_bht(purposes),)),
            L("DETAIL", "R", 1, 200, "Table 2 - Detail", (detail_first,)),
            SE,
        ),
    )
    builder = _Builder()
    root = LoopSpec(
        uid=builder.next_uid(), id="ST_LOOP", usage="R", pos=200, repeat=N, name=table.name, kind="explicit"
    )
    children: list[SegmentSpec | LoopSpec] = []
    for child in table.children:
        if isinstance(child, S):
            children.append(builder.segment(child, root))
        else:
            children.append(builder.loop(child, root, kind="wrapper"))
    children.sort(key=lambda c: c.pos)
    root.children = children
    return CompiledMap(
        name=f"{st01}.5010.X279.A1 (claims-server guide)",
        transaction_id=st01,
        title=title,
        transaction=root,
        envelope={},
        external_codes={},
        qualifier_places={k: tuple(sorted(v)) for k, v in builder.places.items()},
        qualifier_codes={k: frozenset(v) for k, v in builder.codes.items()},
        segment_count=builder.uid,
    )
