"""Every pyx12 error on the corpus (tests/data/corpus) is reported by us too.

Each file's verdict (valid / invalid / unchecked / unreadable), the absence of any
traceback and the money of every 835 are asserted by ``test_corpus_verdicts.py`` for this
corpus and ``corpus-external``; this module runs pyx12 4.0.0's full validation on each file
it has a map for and requires each error it reports to be reported by us as well.

Why some verdicts differ from pyx12's (all deliberate, see test_corpus_verdicts.py):
* Most 837 TR3 worked examples carry made-up NPIs (no Luhn check digit) and 5-digit
  billing-provider ZIPs; pyx12 accepts them, clearinghouses do not (NPI check digit and
  2010AA N403 ZIP+4 edits), so they are invalid here.
* pyx12 does not balance 835s; we do (X221A1 1.10.2), so 835id.x12 is invalid here.
* Sets with no guide (270/271 before our X279A1 guide, 276/277 X212, 837D) are
  "unchecked" here, never "valid".

How pyx12's errors are matched to ours (same segment id + position + code), and the
documented differences in coordinates:
* pyx12's reader attaches "segment identifier invalid" to the *next* segment it walks;
  we report it at the bad segment itself (position - 1).
* Mandatory loops/segments found missing when SE arrives: pyx12 counts that position
  without SE; ours is the SE's position (pyx12's + 1), since SE is segment n of n.
* A missing mandatory composite or a broken syntax rule (e.g. R02030405) is a
  segment-level code 8 in pyx12; we report the IK4 (code 1, or 2 for a syntax rule) on
  the element concerned, which is what a 999 carries.
* pyx12 uses IK304 1 for every segment it cannot place; we say 1 when the id is not in
  the guide at all and 2 (unexpected segment) when it is, but out of place.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path

import pytest

from edi.findings import Finding
from edi.validate import validate

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"

# pyx12 reads an ISA by fixed positions: where the ISA is not padded it takes the wrong
# separators (the manifest's delimiters column: "comp=~ rep=* seg=\n", "comp=1 seg=|")
# and reports errors about a file it misread. We read these by their separators.
PYX12_MISREAD = {
    "imsweb_x12-parser/src/test/resources/837_5010/x12_bad_first_line.txt",
    "kputnam_stupidedi/spec/fixtures/004010/X091A1_HP835_Health_Care_Claim_Payment_Advice/case/1.edi",
}


def _names() -> list[str]:
    with (CORPUS / "MANIFEST.tsv").open(newline="") as fh:
        return sorted(row["corpus_path"] for row in csv.DictReader(fh, delimiter="\t"))


# pyx12 error codes for whole sets / groups / interchanges, as our finding codes.
_ST_CODES = {
    "2": "X12.SE_MISSING",
    "3": "X12.SE02_MISMATCH",
    "4": "X12.SE01_COUNT",
    "23": "X12.ST02_DUPLICATE",
}
_GS_CODES = {
    "3": "X12.GE_MISSING",
    "4": "X12.GE02_MISMATCH",
    "5": "X12.GE01_COUNT",
    "6": "X12.GS06_DUPLICATE",
}
_ISA_CODES = {
    "001": "X12.IEA02_MISMATCH",
    "021": "X12.IEA01_COUNT",
    "023": "X12.IEA_MISSING",
    "025": "X12.ISA13_DUPLICATE",
}
_READER_SEGMENT_CODES = {
    "HL1": "X12.HL01_SEQUENCE",
    "HL2": "X12.HL02_PARENT",
    "LX": "X12.LX_SEQUENCE",
    "SEG1": "X12.TRAILING_SEPARATOR",
}


def _pyx12_errors(path: Path) -> list[tuple] | None:
    """Errors pyx12's full validation reports, flattened; None when pyx12 has no map or cannot read it."""
    import pyx12.params
    import pyx12.x12n_document

    out = io.StringIO()
    logging.disable(logging.CRITICAL)
    try:
        pyx12.x12n_document.x12n_document(pyx12.params.params(), str(path), io.StringIO(), None, fd_json=out)
    except Exception:
        return None  # pyx12 has no map for this set (EngineError) or crashes on it
    finally:
        logging.disable(logging.NOTSET)
    if not out.getvalue():
        return None
    errors: list[tuple] = []
    for isa in json.loads(out.getvalue()).get("interchanges", []):
        errors += [("ISA", e["err_cde"]) for e in isa["errors"]]
        for gs in isa.get("groups", []):
            errors += [("GS", e["err_cde"]) for e in gs["errors"]]
            for ts in gs.get("transactions", []):
                errors += [("ST", e["err_cde"]) for e in ts["errors"]]
                for seg in ts.get("segments", []):
                    errors += [
                        ("SEG", seg["seg_id"], seg["seg_count"], e["err_cde"], e["err_str"])
                        for e in seg["errors"]
                    ]
                    for ele in seg.get("elements", []):
                        errors += [
                            ("ELE", seg["seg_id"], seg["seg_count"], ele["ele_pos"], e["err_cde"])
                            for e in ele["errors"]
                        ]
    return errors


def _covered(error: tuple, findings: list[Finding]) -> bool:
    kind = error[0]
    if kind in ("ISA", "GS", "ST"):
        table = {"ISA": _ISA_CODES, "GS": _GS_CODES, "ST": _ST_CODES}[kind]
        return any(f.code == table.get(error[1]) for f in findings)
    if kind == "SEG":
        _, segment, position, code, text = error
        near = [f for f in findings if f.segment_position in (position, position - 1, position + 1)]
        at = [f for f in findings if f.segment_position == position]
        if code in _READER_SEGMENT_CODES:
            return any(f.code == _READER_SEGMENT_CODES[code] for f in at)
        if code == "8":  # composite missing / syntax rule: pyx12 files these at segment level
            return any(f.ik4 is not None for f in at)
        if code == "1" and "identifier" in text:  # pyx12 files this one segment late
            return any(f.code == "X12.SEGMENT_ID_INVALID" for f in near)
        if code == "1":
            return any(f.ik3 in ("1", "2") for f in at)
        if code == "3":  # missing when SE arrives: ours is the SE position
            return any(f.segment == segment and f.ik3 == "3" for f in near)
        return any(f.segment == segment and f.ik3 == code for f in at)
    _, segment, position, element, code = error
    return any(
        f.segment == segment
        and f.segment_position == position
        and f.ik4 == code
        and f.element is not None
        and f.element.startswith(f"{segment}{int(element):02d}")
        for f in findings
    )


@pytest.mark.parametrize("name", _names())
def test_every_pyx12_error_is_reported_by_us(name: str) -> None:
    corpus = CORPUS
    expected = None if name in PYX12_MISREAD else _pyx12_errors(corpus / name)
    report = validate(str(corpus / name))
    if expected is None:
        # pyx12 has no guide map for this file (270/271, 276/277, 837D, 4010) or cannot
        # read it: then we must say the same, not pretend we checked the guide, except
        # for a UTF-8 BOM, which pyx12 refuses (EDI_NOTES) and we read past.
        codes = {f.code for f in report.findings}
        if any(ts.guide and ts.guide.endswith("(claims-server guide)") for ts in report.transaction_sets):
            # No pyx12 map, but one of our own guides (edi/guides: X279A1 270/271) walked it.
            assert "X12.NO_MAP" not in codes, codes
        elif (corpus / name).read_bytes().startswith(b"\xef\xbb\xbf"):
            assert report.readable and "X12.NO_MAP" not in codes, codes
        elif name in PYX12_MISREAD:
            assert report.readable and "X12.ISA_INVALID" in codes, codes
        else:
            assert not report.readable or "X12.NO_MAP" in codes or report.transaction_sets == [], codes
            assert report.verdict != "valid" or report.transaction_sets == [], codes
        return
    findings = report.findings
    missed = [e for e in expected if not _covered(e, findings)]
    assert missed == []
