"""The corpus 270/271 files: our X279A1 guide's verdicts, and the summaries they read as.

Expected summaries are written out by hand from the files' segments (quoted in comments).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from edi.validate import validate
from edi.x270 import parse_270
from edi.x271 import parse_271
from eligibility.answer import read_271
from eligibility.summary import summarize
from tests.services import unavailable

CORPUS = Path(__file__).resolve().parents[1] / "data" / "corpus"
LFH = "LinuxForHealth_x12/src/tests/resources"
STUPIDEDI = "kputnam_stupidedi/spec/fixtures/005010"
LFH_271 = f"{LFH}/271_005010X279A1/subscriber-health-benefit-check.271"
LFH_271_ERROR = f"{LFH}/271_005010X279A1/subscriber-health-benefit-check-error.271"
STUPIDEDI_271 = (
    f"{STUPIDEDI}/X279A1_HB271_Health_Care_Eligibility_Benefit_Inquiry_and_Response/pass/"
    "error-response-from-payer-to-clinic-not-eligible-for-inquiries-with-payer.edi"
)
STUPIDEDI_270 = f"{STUPIDEDI}/X279A1_HS270_Health_Care_Eligibility_Benefit_Inquiry_and_Response/pass/"
FILES_270 = [
    "LinuxForHealth_x12/demo-file/demo-single-line.270",
    f"{LFH}/270_005010X279A1/subscriber-health-benefit-check.270",
    STUPIDEDI_270 + "generic-request-by-clinic-for-patient-subscriber-eligibility.edi",
    STUPIDEDI_270 + "generic-request-by-physician-for-patient-dependent-eligibility.edi",
]


@pytest.fixture(scope="module")
def corpus() -> Path:
    if not CORPUS.is_dir():
        unavailable(f"corpus not found at {CORPUS}")
    return CORPUS


@pytest.mark.parametrize("name", [*FILES_270, LFH_271, STUPIDEDI_271])
def test_valid_files_pass_our_guide(corpus: Path, name: str) -> None:
    report = validate(str(corpus / name))
    assert report.valid, [(f.code, f.segment, f.element) for f in report.findings]
    assert all(ts.guide and "X279" in ts.guide for ts in report.transaction_sets)


def test_the_error_271_is_caught_by_the_envelope_check(corpus: Path) -> None:
    # ST*271*4321 ... SE*8*4323: SE02 must equal ST02.
    report = validate(str(corpus / LFH_271_ERROR))
    assert [f.code for f in report.errors] == ["X12.SE02_MISMATCH"]


@pytest.mark.parametrize("name", FILES_270)
def test_corpus_270s_parse(corpus: Path, name: str) -> None:
    (inquiry,) = parse_270(str(corpus / name)).inquiries
    # NM1*PR*2*ABC COMPANY*****PI*842610001, DTP*291*D8*20060501, EQ*30
    assert (inquiry.payer.name, inquiry.payer.identifier) == ("ABC COMPANY", "842610001")
    assert inquiry.service_date == date(2006, 5, 1) and inquiry.service_types == ("30",)
    assert inquiry.trace_number == "93175-012547" and inquiry.subscriber.member_id == "11122333301"
    if "dependent" in name:
        # NM1*03*1*SMITH*MARY / DMG*D8*19781014 in 2100D
        assert inquiry.dependent is not None and inquiry.dependent.birth_date == date(1978, 10, 14)
    else:
        assert inquiry.dependent is None and inquiry.subscriber.birth_date == date(1943, 5, 19)


def test_lfh_271_summary(corpus: Path) -> None:
    answer = read_271(
        (corpus / LFH_271).read_bytes(), trace_number="93175-012547", service_types=["98", "MH"]
    )
    summary = answer.summary
    assert not answer.malformed
    # EB*1**30**GOLD 123 PLAN + DTP*346*D8*20060101 in 2100C
    assert summary.status == "active" and summary.plan == "GOLD 123 PLAN"
    assert summary.coverage_start == date(2006, 1, 1) and summary.coverage_end is None
    # EB*B**1^33^35^47^86^88^98^AL^MH^UC*HM*GOLD 123 PLAN*27*10.00*****Y  (in network, per visit)
    # EB*B ...*27*30.00*****N                                         (out of network)
    office = summary.service("98")
    assert office is not None and office.active is True  # EB*1**1^33^...^98^...
    assert [(c.cents, c.network, c.per) for c in office.copays] == [
        (1000, "in", "visit"),
        (3000, "out", "visit"),
    ]
    mental = summary.service("MH")
    assert mental is not None and [c.cents for c in mental.copays] == [1000, 3000]
    general = summary.service("30")
    assert general is not None and general.copays == [] and general.deductibles == []
    # EB*L + LS/NM1*P3 (primary care provider) is not another payer.
    assert summary.other_payers == [] and summary.retry is None


def test_stupidedi_271_rejection(corpus: Path) -> None:
    # AAA*Y**50*N in 2100B: provider ineligible for inquiries, resubmission not allowed.
    response = parse_271(str(corpus / STUPIDEDI_271)).responses[0]
    summary = summarize(response)
    assert summary.status == "rejected"
    assert [(r.reason, r.follow_up, r.loop) for r in summary.rejections] == [("50", "N", "2100B")]
    assert summary.retry is not None and not summary.retry.retry and summary.retry.after is None
    assert summary.to_json_dict()["retry"]["reason"] == (
        "the payer says resubmission not allowed: provider ineligible for inquiries"
    )


def test_lfh_error_271_is_never_read_as_active(corpus: Path) -> None:
    answer = read_271((corpus / LFH_271_ERROR).read_bytes())
    assert answer.malformed and answer.summary.status == "error"
    assert answer.summary.retry is not None and answer.summary.retry.retry
    assert answer.summary.retry.after is not None and answer.summary.retry.after.total_seconds() == 900
    assert answer.summary.services == []
