"""Every file of both public X12 corpora: its verdict, no traceback, and the money of every 835.

The files are copies under ``tests/data/corpus-external`` (94 files, ``MANIFEST.tsv`` with a
sha256 and what each source says of each file) and ``tests/data/corpus`` (63 files,
``MANIFEST.tsv`` with provenance, what pyx12 4.0.0 / x12sdk / linuxforhealth-x12 did with
it, and a note), with their licences (``LICENSES.md`` in each folder). Nothing here reads
``../shared`` at run time.

For each file:

* ``edi validate`` gives the expected verdict: ``valid``, ``invalid`` (with the finding
  codes that make it so), ``unchecked`` (nothing wrong was found but no implementation
  guide exists for its ST01 + ST03: 276/277 X212, 837 X222A2/X223A3, 837D X224A2,
  271 X279 without A1) or ``unreadable`` (not X12 at all);
* no reader, validator, parser or CLI command raises: every answer is structured;
* for every 835, the count of CLP, SVC and PLB segments and the sums of CLP04, BPR02 and
  the PLB amounts read by ``edi.x835`` equal a naive count done here (split on the
  segment terminator the ISA names, no library): a reader that drops a set, a claim,
  a line or an adjustment fails here, whatever the verdict.

How the table was derived from the manifests, and where it deliberately says more:

* A manifest "valid" for a 276/277 X212, 837 X222A2/X223A3, 837D or 271 X279 file is
  ``unchecked``: we hold no guide for it (docs/edi-reading.md), so we do not call it valid.
* A manifest "valid" (its source library parses it) is ``invalid`` here only where the
  file breaks a rule that can be pointed at in the file itself, named in the comment:
  control numbers that differ (IEA02 ≠ ISA13), a missing trailer, a GS01 that does not
  match ST01, money that does not balance (X221A1 1.10.2), a negative BPR02, an ST03 that
  is not GS08, a TR3 example's made-up NPI (no Luhn check digit) or 5-digit billing ZIP
  (clearinghouse edits, as in test_corpus.py). pyx12, run on the same files, reports
  those imsweb "valid" 837s invalid too.
* "unknown" (stupidedi ``case/`` files: TR3 prose, then the example) is read past the
  prose, so its money is counted, and is ``invalid`` for the prose (X12.TEXT_BEFORE_ISA).
* Files the manifest calls broken keep a verdict that says so (``invalid`` or, without
  any ISA, ``unreadable``). A non-padded ISA is now read by its separators (no file is
  lost for it) and reported (X12.ISA_INVALID, TA1 width codes).
"""

from __future__ import annotations

import csv
import hashlib
import json
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import pytest
from click.testing import CliRunner

from claims_server.cli_edi import edi_group
from edi import x835
from edi.reader import X12SyntaxError, read_segments
from edi.validate import validate

DATA = Path(__file__).resolve().parents[1] / "data"
ROOTS = {"external": DATA / "corpus-external", "corpus": DATA / "corpus"}

STUPIDEDI = "kputnam_stupidedi/spec/fixtures/005010/"
X212 = STUPIDEDI + "X212_HN277_Health_Care_Claim_Status_Request_and_Response/pass/"
X212_276 = STUPIDEDI + "X212_HR276_Health_Care_Claim_Status_Request_and_Response/"
X221 = STUPIDEDI + "X221_HP835_Health_Care_Claim_Payment_Advice/case/"
X221A1 = STUPIDEDI + "X221A1_HP835_Health_Care_Claim_Payment_Advice/pass/"
X222A1 = STUPIDEDI + "X222A1_HC837_Health_Care_Claim_Professional/pass/"
X223A2 = STUPIDEDI + "X223A2_HC837_Health_Care_Claim_Institutional/pass/"
X224A2 = STUPIDEDI + "X224A2_HC837_Health_Care_Claim_Dental/pass/"
X279 = STUPIDEDI + "X279_HB271_Health_Care_Eligibility_Benefit_Inquiry_and_Response/pass/"
X279A1 = STUPIDEDI + "X279A1_H{}_Health_Care_Eligibility_Benefit_Inquiry_and_Response/pass/"
LFH = "LinuxForHealth_x12/src/tests/resources/"
IMSWEB = "imsweb_x12-parser/src/test/resources/"
AFFECT = "affect-therapeutics_edi-835-parser/"
BADX12 = "albmarin_badX12/tests/files/errors/"

VALID: tuple[str, ...] = ("valid",)
UNCHECKED: tuple[str, ...] = ("unchecked",)
# TR3 837 worked examples: made-up NPIs (no Luhn check digit) and 5-digit billing ZIPs.
NPI = ("invalid", "X12.NPI_CHECK_DIGIT")
ZIP4 = ("invalid", "X12.BILLING_PROVIDER_ZIP4")
NPI_ZIP4 = ("invalid", "X12.NPI_CHECK_DIGIT", "X12.BILLING_PROVIDER_ZIP4")
# imsweb's synthetic 837Ps: HI qualifiers that are not codes, CLM02 ≠ Σ SV102, pointers to
# missing diagnoses (pyx12 also rejects every one of them: HI01-02 missing, HI02-01 8901).
IMSWEB_837 = ("invalid", "X12.ELEMENT_INVALID_CODE", "X12.CLM02_BALANCE", "X12.DX_POINTER")

# "external/<path>" or "corpus/<path>" -> (verdict, finding codes that must be among the errors)
EXPECTED: dict[str, tuple[str, ...]] = {
    # ---------------------------------------------------------------- corpus-external
    f"external/{X212}claim-ncpdp-response.edi": UNCHECKED,
    f"external/{X212}info-receiver-response.edi": UNCHECKED,
    f"external/{X212}provider-response.edi": UNCHECKED,
    # "unknown": prose, then the example; read past the prose.
    f"external/{X212_276}case/1.edi": ("invalid", "X12.TEXT_BEFORE_ISA"),
    f"external/{X212_276}pass/claim-ncpdp-request.edi": UNCHECKED,
    f"external/{X212_276}pass/info-receiver-request.edi": UNCHECKED,
    f"external/{X212_276}pass/provider-request.edi": UNCHECKED,
    # IEA*1*267365555 closes ISA13 269895334.
    f"external/{STUPIDEDI}X212_HR277_Heatlh_Care_Information_Status_Notification/pass/1.era": (
        "invalid",
        "X12.IEA02_MISMATCH",
    ),
    f"external/{X221}1.edi": ("invalid", "X12.TEXT_BEFORE_ISA"),
    f"external/{X221}2.edi": ("invalid", "X12.TEXT_BEFORE_ISA"),
    # CLP04 912 + 310 - PLB (-1.27 - 1.27) = 1224.54, BPR02 1222; SE*39 for 36 segments.
    f"external/{X221}3a.edi": (
        "invalid",
        "X12.TEXT_BEFORE_ISA",
        "X12.835_PAYMENT_UNBALANCED",
        "X12.SE01_COUNT",
    ),
    f"external/{STUPIDEDI}X222_HC837_Health_Care_Claim_Professional/case/1.edi": (
        "invalid",
        "X12.TEXT_BEFORE_ISA",
    ),
    f"external/{X222A1}COB-claim-from-payer-a-to-payer-b-in-payer-to-payer.edi": NPI_ZIP4,
    f"external/{X222A1}anesthesia.edi": NPI_ZIP4,
    f"external/{X222A1}chiropractic.edi": NPI_ZIP4,
    f"external/{X222A1}home-infusion-therapy-pharmacy-adjudicated-with-HCPCS-in-loop-2400-or-NDC-in-loop-2410.edi": (
        ZIP4
    ),
    f"external/{X222A1}home-infusion-therapy-pharmacy-adjudicated-with-NDC-in-loop-2410.edi": ZIP4,
    f"external/{X222A1}out-of-network-repriced-claim.edi": NPI,
    f"external/{X222A1}ppo-repriced-claim.edi": NPI,
    # PWK02 "AD" is not a 5010 code (as oxygen.edi in corpus/).
    f"external/{X222A1}wheelchair.edi": ("invalid", "X12.ELEMENT_INVALID_CODE", "X12.NPI_CHECK_DIGIT"),
    f"external/{X223A2}automobile-accident.edi": NPI_ZIP4,
    f"external/{X223A2}out-of-network-repriced-claim.edi": NPI,
    f"external/{X224A2}claim-from-billing-provider-to-payer-a.edi": UNCHECKED,
    f"external/{X224A2}claim-from-billing-provider-to-payer-b.edi": UNCHECKED,
    f"external/{X224A2}claim-multi-quantity-single-line.edi": UNCHECKED,
    f"external/{X224A2}multiple-tooth-numbers.edi": UNCHECKED,
    f"external/{X224A2}orthodontic-treatment-plan.edi": UNCHECKED,
    f"external/{X224A2}predetermination-of-benefits.edi": UNCHECKED,
    f"external/{X224A2}sales-tax.edi": UNCHECKED,
    # ST03 005010X279 (the base guide, not X279A1): no guide for it.
    f"external/{X279}response-to-generic-request-by-clinic-for-patient-subscriber-eligibility.edi": UNCHECKED,
    f"external/{X279}response-to-generic-request-by-physician-for-patient-dependent-eligibility.edi": UNCHECKED,
    "external/LinuxForHealth_x12/demo-file/demo.276": UNCHECKED,
    "external/LinuxForHealth_x12/demo-file/demo.277": UNCHECKED,
    "external/LinuxForHealth_x12/demo-file/demo.837": UNCHECKED,
    "external/LinuxForHealth_x12/demo-file/demo.837i": UNCHECKED,
    f"external/{LFH}270_005010X279A1/dependent-health-benefit-check.270": VALID,
    f"external/{LFH}271_005010X279A1/dependent-health-benefit-check.271": VALID,
    f"external/{LFH}276_005010X212/claim-level-status-ncpdp.276": UNCHECKED,
    f"external/{LFH}276_005010X212/claim-level-status.276": UNCHECKED,
    f"external/{LFH}276_005010X212/information-receiver-level-status.276": UNCHECKED,
    f"external/{LFH}276_005010X212/provider-level-status.276": UNCHECKED,
    f"external/{LFH}277_005010X212/claim-level-status-ncpdp.277": UNCHECKED,
    f"external/{LFH}277_005010X212/information-receiver-level-status.277": UNCHECKED,
    f"external/{LFH}277_005010X212/provider-level-status.277": UNCHECKED,
    # No PER*BL (TR3-required, as demo.835 in corpus/) and no BPR16; SVC lines after DTM.
    f"external/{LFH}835_005010X221A1/secondary-payment.835": (
        "invalid",
        "X12.SEGMENT_MISSING",
        "X12.ELEMENT_MISSING",
    ),
    # SVC*HC*24599.00*1766.50*187.50: the procedure code written as SVC02 (element, not
    # component separator), so the line reads 24599.00 - 1579.00 != 1766.50.
    f"external/{LFH}835_005010X221A1/tertiary-payment.835": (
        "invalid",
        "X12.ELEMENT_MISSING",
        "X12.835_LINE_UNBALANCED",
    ),
    f"external/{LFH}837_005010X222A2/demo.ambulance.example5.837": UNCHECKED,
    f"external/{LFH}837_005010X222A2/demo.autoaccident.837": UNCHECKED,
    f"external/{LFH}837_005010X222A2/demo.cob.2ndary.example4.837": UNCHECKED,
    f"external/{LFH}837_005010X222A2/demo.cob.example3.A.837": UNCHECKED,
    f"external/{LFH}837_005010X222A2/demo.cob.example3.B.837": UNCHECKED,
    f"external/{LFH}837_005010X222A2/demo.cob.example3.C.837": UNCHECKED,
    f"external/{LFH}837_005010X222A2/demo.cob.example4.837": UNCHECKED,
    f"external/{LFH}837_005010X222A2/demo.drug.example10.1.837": UNCHECKED,
    f"external/{LFH}837_005010X222A2/demo.drug.example10.2.837": UNCHECKED,
    f"external/{LFH}837_005010X222A2/demo.drug.example10.3.837": UNCHECKED,
    f"external/{LFH}837_005010X222A2/demo.example11.837": UNCHECKED,
    f"external/{LFH}837_005010X222A2/demo.example12.837": UNCHECKED,
    f"external/{LFH}837_005010X222A2/demo.example2.837": UNCHECKED,
    f"external/{LFH}837_005010X222A2/demo.example7.837": UNCHECKED,
    f"external/{LFH}837_005010X222A2/demo.example8.837": UNCHECKED,
    f"external/{LFH}837_005010X222A2/demo.example9.837": UNCHECKED,
    f"external/{LFH}837_005010X223A3/out-of-network-repriced-claim.837i": UNCHECKED,
    f"external/{LFH}837_005010X223A3/ppo-repriced-claim.837i": UNCHECKED,
    # IEA*1*842928883 closes ISA13 000000001.
    f"external/{IMSWEB}277_5010/x12_277_x212.txt": ("invalid", "X12.IEA02_MISMATCH"),
    # GS05 102497 (97 seconds); IEA02 000000001 closes ISA13 000000286.
    f"external/{IMSWEB}837_5010/x12_999_accepted.txt": ("invalid", "X12.GS_INVALID", "X12.IEA02_MISMATCH"),
    # AK202 "101": a transaction set control number is 4-9 characters.
    f"external/{IMSWEB}837_5010/x12_999_accepted_ta1.txt": ("invalid", "X12.ELEMENT_TOO_SHORT"),
    f"external/{IMSWEB}837_5010/x12_bad_valid_code.txt": (
        "invalid",
        "X12.SEGMENT_UNEXPECTED",
        "X12.LOOP_MISSING",
    ),
    f"external/{IMSWEB}837_5010/x12_loop_errors2_exceeds_max_repeats_multiple_parents.txt": (
        "invalid",
        "X12.LOOP_REPEAT",
    ),
    f"external/{IMSWEB}837_5010/x12_loop_errors3_missing_loops.txt": ("invalid", "X12.LOOP_MISSING"),
    f"external/{IMSWEB}837_5010/x12_missing_required_loop_in_one_repeat.txt": ("invalid", "X12.LOOP_MISSING"),
    f"external/{IMSWEB}837_5010/x12_missing_required_loops_mult_repeats.txt": (
        "invalid",
        "X12.LOOP_MISSING",
        "X12.SEGMENT_UNEXPECTED",
    ),
    # Two GS with the same GS06 and IEA01 1 for 2 groups, besides IMSWEB_837.
    f"external/{IMSWEB}837_5010/x12_multiple_gs.txt": (*IMSWEB_837, "X12.GS06_DUPLICATE", "X12.IEA01_COUNT"),
    # "unknown": the same ISA13 on every interchange.
    f"external/{IMSWEB}837_5010/x12_multiple_transactions.txt": (*IMSWEB_837, "X12.ISA13_DUPLICATE"),
    f"external/{IMSWEB}837_5010/x12_no_errors.txt": IMSWEB_837,
    f"external/{IMSWEB}837_5010/x12_segments_out_of_order.txt": (
        "invalid",
        "X12.SEGMENT_UNEXPECTED",
        "X12.SEGMENT_MISSING",
    ),
    f"external/{IMSWEB}837_5010/x12_valid.txt": IMSWEB_837,
    # HI*ABK:...~ with a trailing separator (pyx12 SEG1), CLM02 ≠ Σ SV102.
    f"external/{IMSWEB}837_5010/x12_writer_test.txt": (
        "invalid",
        "X12.TRAILING_SEPARATOR",
        "X12.CLM02_BALANCE",
    ),
    "external/azoner_pyx12/pyx12/tests/834_lui_id_5010.999.txt": VALID,
    # Placeholder values (CAS*grp_code*reason_code*amount*quantity, PLB*...*resnCode>adjID*5):
    # BPR02 1.78 = CLP04 1.78 + 0 - PLB 5 does not hold.
    f"external/{AFFECT}input/sample_835.txt": (
        "invalid",
        "X12.ELEMENT_INVALID_CHARACTER",
        "X12.835_PAYMENT_UNBALANCED",
    ),
    f"external/{AFFECT}tests/test_edi_835_files/emedny_sample.txt": VALID,
    f"external/{AFFECT}tests/test_edi_835_files/exhaustive_sample.txt": ("unreadable", "X12.ISA_MISSING"),
    # ISA fields not padded (read by separators; TA1 width codes); IEA02 100000301 ≠ ISA13.
    f"external/{AFFECT}tests/test_edi_835_files/nevada_medicaid.txt": (
        "invalid",
        "X12.ISA_INVALID",
        "X12.IEA02_MISMATCH",
    ),
    f"external/{AFFECT}tests/test_edi_835_files/sample_835_with_interests.txt": (
        "invalid",
        "X12.ELEMENT_INVALID_CHARACTER",
        "X12.835_PAYMENT_UNBALANCED",
    ),
    # CLP before any LX; claim CAS PR-2 499.50 repeats the line CAS (400 + 99.50): the claim
    # reads 2000 - 999 != 1500.50; no N3/N4/PER for the payer.
    "external/CHS-CDS-AIML_edi-835-parser/tests/test_edi_835_files/test.835": (
        "invalid",
        "X12.SEGMENT_UNEXPECTED",
        "X12.835_CLAIM_UNBALANCED",
    ),
    # "IEA*1\n*000010216": a line break inside IEA01, then a stray STC after the IEA.
    "external/Silvenga_vscode-edi-x12-support/docs/X223-837I-two-claims-for-the-same-provider.edi": (
        "invalid",
        "X12.CONTROL_STRUCTURE",
        "X12.IEA01_COUNT",
    ),
    "external/Silvenga_vscode-edi-x12-support/docs/bad-header.edi": (
        "invalid",
        "X12.ISA_INVALID",
        "X12.GS_INVALID",
    ),
    # Ends after PRV in the second claim: no SE, GE, IEA.
    "external/Silvenga_vscode-edi-x12-support/docs/odd-separator.edi": (
        "invalid",
        "X12.SE_MISSING",
        "X12.GE_MISSING",
        "X12.IEA_MISSING",
    ),
    # ST03 005010X222 under GS08 005010X222A1 (HIPAA: ST03 = GS08); no guide for X222.
    "external/apimeister_x12-types/test-data/005010_837.edi": ("invalid", "X12.ST03_MISMATCH"),
    # A 271 under GS*HS (HS is for 270s: the D4); ends after SE (no GE/IEA).
    "external/aaronhuggins_node-x12/test/test-data/271.edi": (
        "invalid",
        "X12.GS01_MISMATCH",
        "X12.GE_MISSING",
        "X12.IEA_MISSING",
    ),
    f"external/{BADX12}bad_file.edi": ("unreadable", "X12.ISA_MISSING"),
    f"external/{BADX12}error_validation.edi": (
        "invalid",
        "X12.GS01_MISMATCH",
        "X12.GS_INVALID",
        "X12.SE01_COUNT",
        "X12.GE01_COUNT",
        "X12.IEA01_COUNT",
    ),
    f"external/{BADX12}segment_terminator.edi": ("invalid", "X12.IEA_MISSING"),
    f"external/{BADX12}unknown_segment_error.edi": ("invalid", "X12.CONTROL_STRUCTURE"),
    # ---------------------------------------------------------------- corpus
    "corpus/LinuxForHealth_x12/demo-file/demo-single-line.270": VALID,
    "corpus/LinuxForHealth_x12/demo-file/demo.835": (
        "invalid",
        "X12.SEGMENT_MISSING",
        "X12.ELEMENT_NOT_USED",
    ),
    f"corpus/{LFH}270_005010X279A1/subscriber-health-benefit-check.270": VALID,
    f"corpus/{LFH}271_005010X279A1/subscriber-health-benefit-check-error.271": (
        "invalid",
        "X12.SE02_MISMATCH",
    ),
    f"corpus/{LFH}271_005010X279A1/subscriber-health-benefit-check.271": VALID,
    f"corpus/{LFH}835_005010X221A1/cob-contractural-adjustment.835": (
        "invalid",
        "X12.ELEMENT_MISSING",
        "X12.SEGMENT_UNEXPECTED",
    ),
    f"corpus/{LFH}835_005010X221A1/managed-care.835": ("invalid", "X12.ELEMENT_INVALID_DATE"),
    f"corpus/{LFH}837_005010X222A2/demo.example1.837": UNCHECKED,
    f"corpus/{LFH}837_005010X223A3/two-claims-single-provider.837i": UNCHECKED,
    # pyx12 "valid" (it does not balance 835s): CLP04 -210 + 200 - 500.25 - PLB (-977.94)
    # = 467.69, BPR02 5950.21.
    "corpus/azoner_pyx12/pyx12/test/x12testdata/835id.x12": ("invalid", "X12.835_PAYMENT_UNBALANCED"),
    "corpus/azoner_pyx12/pyx12/test/x12testdata/fail_no_IEA.x12": (
        "invalid",
        "X12.IEA_MISSING",
        "X12.SE01_COUNT",
    ),
    "corpus/azoner_pyx12/pyx12/tests/834_ls_le_ls_5010.999.txt": VALID,
    "corpus/azoner_pyx12/pyx12/tests/835_mult_loops.txt": VALID,
    f"corpus/{IMSWEB}277_5010/x12_277CA_accepted.txt": (
        "invalid",
        "X12.ELEMENT_INVALID_DATE",
        "X12.SEGMENT_MISSING",
    ),
    f"corpus/{IMSWEB}277_5010/x12_277CA_rejected.txt": ("invalid", "X12.SEGMENT_MISSING"),
    f"corpus/{IMSWEB}837_5010/x12_999_rejected.txt": VALID,
    f"corpus/{IMSWEB}837_5010/x12_ambiguous_loop.txt": (
        "invalid",
        "X12.SE01_COUNT",
        "X12.TRAILING_SEPARATOR",
    ),
    # ISA02 is 9 characters: read by its separators now, rejected for it (TA1 width).
    f"corpus/{IMSWEB}837_5010/x12_bad_first_line.txt": ("invalid", "X12.ISA_INVALID"),
    f"corpus/{IMSWEB}837_5010/x12_bad_segment_identifier.txt": ("invalid", "X12.SEGMENT_ID_INVALID"),
    f"corpus/{IMSWEB}837_5010/x12_complex.txt": ("invalid", "X12.SE01_COUNT", "X12.COB_LINE_BALANCE"),
    f"corpus/{IMSWEB}837_5010/x12_loop_errors1_exceeds_max_1_parent.txt": ("invalid", "X12.LOOP_REPEAT"),
    f"corpus/{IMSWEB}837_5010/x12_many_claims.txt": (
        "invalid",
        "X12.ELEMENT_INVALID_CODE",
        "X12.ELEMENT_MISSING",
    ),
    f"corpus/{IMSWEB}837_5010/x12_missing_elements.txt": (
        "invalid",
        "X12.ELEMENT_MISSING",
        "X12.LX_SEQUENCE",
    ),
    f"corpus/{IMSWEB}837_5010/x12_multiple_isa.txt": ("invalid", "X12.SE01_COUNT"),
    f"corpus/{IMSWEB}837_5010/x12_multiple_st.txt": ("invalid", "X12.GE01_COUNT", "X12.ST02_DUPLICATE"),
    f"corpus/{IMSWEB}837_5010/x12_no_isa_line.txt": ("unreadable", "X12.ISA_MISSING"),
    f"corpus/{IMSWEB}837_5010/x12_segment_errors.txt": (
        "invalid",
        "X12.SEGMENT_MISSING",
        "X12.SEGMENT_REPEAT",
    ),
    f"corpus/{IMSWEB}837_5010/x12_valid_different_separators.txt": ("invalid", "X12.SE01_COUNT"),
    f"corpus/{IMSWEB}837_5010/x223-test.txt": ("invalid", "X12.SEGMENT_LEADING_SPACE", "X12.ELEMENT_PATTERN"),
    "corpus/keironstoddart_edi-835-parser/tests/test_edi_835_files/blue_cross_nc_sample.txt": (
        "unreadable",
        "X12.ISA_MISSING",
    ),
    "corpus/keironstoddart_edi-835-parser/tests/test_edi_835_files/emedny_sample.txt": VALID,
    "corpus/keironstoddart_edi-835-parser/tests/test_edi_835_files/united_healthcare_legacy_sample.txt": (
        "invalid",
        "X12.ELEMENT_INVALID_CODE",
    ),
    # ISA06 of 30 characters: read by its separators now, rejected for it.
    "corpus/kputnam_stupidedi/spec/fixtures/004010/X091A1_HP835_Health_Care_Claim_Payment_Advice/case/1.edi": (
        "invalid",
        "X12.ISA_INVALID",
    ),
    f"corpus/{STUPIDEDI}X212_HN277_Health_Care_Claim_Status_Request_and_Response/pass/claim-response.edi": UNCHECKED,
    f"corpus/{X212_276}pass/claim-request.edi": UNCHECKED,
    f"corpus/{X221A1}dollars-and-data-sent-separate.edi": VALID,
    f"corpus/{X221A1}dollars-and-data-sent-together.edi": VALID,
    f"corpus/{X221A1}era-sample.edi": VALID,
    f"corpus/{X221A1}multiple-claims-single-check.edi": VALID,
    f"corpus/{X221A1}secondary-payment-with-higher-fee-schedule.edi": VALID,
    f"corpus/{X221A1}secondary-payments.edi": VALID,
    f"corpus/{X221A1}tertiary-payments.edi": VALID,
    f"corpus/{X222A1}COB-claim-from-billing-provider-to-payer-a.edi": NPI_ZIP4,
    f"corpus/{X222A1}COB-claim-from-billing-provider-to-payer-b.edi": NPI_ZIP4,
    f"corpus/{X222A1}ambulance.edi": NPI,
    f"corpus/{X222A1}commercial-health-insurance.edi": NPI_ZIP4,
    f"corpus/{X222A1}drug-administered-in-the-physician-office.edi": ZIP4,
    f"corpus/{X222A1}encounter.edi": NPI_ZIP4,
    f"corpus/{X222A1}medicare-secondary-payer-COB.edi": NPI_ZIP4,
    f"corpus/{X222A1}oxygen.edi": ("invalid", "X12.ELEMENT_INVALID_CODE", "X12.NPI_CHECK_DIGIT"),
    f"corpus/{X223A2}837-institutional-claim.edi": (
        "invalid",
        "X12.ELEMENT_INVALID_DATE",
        "X12.ELEMENT_PATTERN",
    ),
    f"corpus/{X223A2}ppo-repriced-claim.edi": NPI,
    f"corpus/{X223A2}two-claims-for-the-same-provider.edi": (
        "invalid",
        "X12.ELEMENT_PATTERN",
        "X12.NPI_CHECK_DIGIT",
    ),
    f"corpus/{X224A2}commercial-health-insurance.edi": UNCHECKED,
    f"corpus/{STUPIDEDI}X231A1_FA999_Implementation_Acknowledgment_for_Health_Care_Insurance/pass/"
    "response-to-functional-group-containing-3-837s.edi": VALID,
    f"corpus/{X279A1.format('B271')}error-response-from-payer-to-clinic-not-eligible-for-inquiries-with-payer.edi": (
        VALID
    ),
    f"corpus/{X279A1.format('S270')}generic-request-by-clinic-for-patient-subscriber-eligibility.edi": VALID,
    f"corpus/{X279A1.format('S270')}generic-request-by-physician-for-patient-dependent-eligibility.edi": VALID,
    # BPR*H*-6173.50 (BPR02 never negative); CLP 385.21 - PR-27 385.20 != 0 in both sets.
    "corpus/moov-io_x12/examples/example_5010_835/sample1.txt": (
        "invalid",
        "X12.835_PAYMENT_NEGATIVE",
        "X12.835_CLAIM_UNBALANCED",
    ),
    # CLP04 4000.00 but the line pays 2998.00, nothing explains the rest; BPR16 20990080.
    "corpus/moov-io_x12/examples/example_5010_835/sample2.txt": (
        "invalid",
        "X12.835_CLAIM_UNBALANCED",
        "X12.ELEMENT_INVALID_DATE",
    ),
    "corpus/moov-io_x12/examples/example_5010_837d/sample.txt": UNCHECKED,
    "corpus/moov-io_x12/examples/example_5010_837p/sample.txt": (
        "invalid",
        "X12.DX_POINTER",
        "X12.NPI_CHECK_DIGIT",
    ),
}


def _manifest(root: str) -> list[dict[str, str]]:
    with (ROOTS[root] / "MANIFEST.tsv").open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _manifest_names() -> list[str]:
    names = [f"external/{row['file']}" for row in _manifest("external")]
    return names + [f"corpus/{row['corpus_path']}" for row in _manifest("corpus")]


def _path(name: str) -> Path:
    root, _, rest = name.partition("/")
    return ROOTS[root] / rest


ALL = sorted(EXPECTED)


def test_every_file_of_both_manifests_has_a_verdict_and_is_the_file_described() -> None:
    assert sorted(_manifest_names()) == ALL
    on_disk = sorted(
        f"{key}/{p.relative_to(root)}"
        for key, root in ROOTS.items()
        for p in root.rglob("*")
        if p.is_file()
        and p.name not in ("MANIFEST.tsv", "README.md", "LICENSES.md")
        and "LICEN" not in p.name
    )
    assert on_disk == ALL
    # The copies are the files the manifests describe (bytes, or bytes with LF endings).
    for row in _manifest("external"):
        digest = hashlib.sha256(_path(f"external/{row['file']}").read_bytes()).hexdigest()
        assert digest in (row["sha256"], row["sha256_lf"]), row["file"]
    for row in _manifest("corpus"):
        digest = hashlib.sha256(_path(f"corpus/{row['corpus_path']}").read_bytes()).hexdigest()
        assert digest.startswith(row["sha256_16"]), row["corpus_path"]


def test_every_licence_named_in_the_manifests_is_recorded() -> None:
    for key, column, repo_of in (("external", "licence", "repo"), ("corpus", "license", "source_repo")):
        text = (ROOTS[key] / "LICENSES.md").read_text()
        for row in _manifest(key):
            assert row[repo_of] in text and row[column].strip('"') in text, row


@pytest.mark.parametrize("name", ALL)
def test_verdict(name: str) -> None:
    verdict, *codes = EXPECTED[name]
    report = validate(_path(name))
    errors = sorted({f.code for f in report.findings if f.is_error})
    assert report.verdict == verdict, errors
    assert set(codes) <= set(errors), errors
    json.dumps(report.to_json_dict())  # the JSON report is always serializable
    if verdict == "unchecked":
        assert any(not ts.checked for ts in report.transaction_sets)
        assert {f.code for f in report.findings if not f.is_error} >= {"X12.NO_MAP"}


@pytest.mark.parametrize("name", ALL)
def test_no_traceback_anywhere(name: str) -> None:
    """The reader raises only its structured error; the CLI answers every file with
    JSON or one line, never a traceback."""
    path = _path(name)
    try:
        sum(1 for _ in read_segments(path))
    except X12SyntaxError as exc:
        assert EXPECTED[name][0] == "unreadable", exc.to_dict()
    runner = CliRunner()
    for command in (["validate", "--json"], ["parse"], ["ack"]):
        result = runner.invoke(edi_group, [*command, str(path)])
        assert result.exception is None or isinstance(result.exception, SystemExit), (command, result.output)
        assert "Traceback" not in result.output
        assert result.exit_code in (0, 1, 2, 3), (command, result.exit_code)
    parsed = runner.invoke(edi_group, ["parse", str(path)])
    assert isinstance(json.loads(parsed.stdout), dict)


# --------------------------------------------------------------------------- 835 money


def _cents(text: str) -> int:
    """An X12 decimal as cents, half up; what cannot be read counts 0 (the parser says so)."""
    try:
        return int((Decimal(text) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except (InvalidOperation, ValueError):
        return 0


def naive_835_money(raw: bytes) -> dict[str, int]:
    """CLP/SVC/PLB counts and CLP04/BPR02/PLB sums, by splitting the text on the segment
    terminator the first ISA names (the character after ISA16, wherever that ISA starts
    and however wide it is) and the element separator (its 4th character)."""
    text = raw.decode("utf-8", errors="replace")
    found = {
        "sets": 0,
        "CLP": 0,
        "SVC": 0,
        "PLB": 0,
        "CLP04": 0,
        "BPR02": 0,
        "PLB_AMOUNTS": 0,
        "PLB_PAIRS": 0,
    }
    start = text.find("ISA")
    while start > 0 and text[start - 1] not in "\r\n\ufeff":
        start = text.find("ISA", start + 1)
    if start < 0:
        return found
    element = text[start + 3]
    position = start
    for _ in range(16):
        position = text.find(element, position + 1)
    terminator = text[position + 2]
    in_835 = False
    for piece in text[start:].split(terminator):
        elements = piece.strip().split(element)
        sid = elements[0]
        if sid == "ST":
            in_835 = elements[1:2] == ["835"]
            found["sets"] += in_835
            continue
        if sid in ("CLP", "SVC", "PLB"):
            found[sid] += 1
        if sid == "CLP" and len(elements) > 4:
            found["CLP04"] += _cents(elements[4])
        elif sid == "BPR" and len(elements) > 2:
            found["BPR02"] += _cents(elements[2])
        elif sid == "PLB":
            # PLB03/04 ... PLB13/14: an adjustment is a reason, an amount, or both.
            for index in range(3, min(len(elements), 15), 2):
                amount = elements[index + 1] if index + 1 < len(elements) else ""
                if elements[index] or amount:
                    found["PLB_AMOUNTS"] += _cents(amount) if amount else 0
                    found["PLB_PAIRS"] += 1
    return found


def _naive_has_835(raw: bytes) -> bool:
    return naive_835_money(raw)["sets"] > 0


def parsed_835_money(path: Path) -> dict[str, int]:
    document = x835.parse_835_document(path)
    remittances = document.transactions
    return {
        "sets": len(remittances),
        "CLP": sum(len(r.claims) for r in remittances),
        "SVC": sum(len(c.lines) for r in remittances for c in r.claims),
        "PLB": sum(r.provider_adjustment_segments for r in remittances),
        "CLP04": sum(c.paid_cents for r in remittances for c in r.claims),
        "BPR02": sum(r.payment.amount_cents for r in remittances),
        "PLB_AMOUNTS": sum(a.amount_cents for r in remittances for a in r.provider_adjustments),
        "PLB_PAIRS": sum(len(r.provider_adjustments) for r in remittances),
    }


def _manifest_says_835(name: str) -> bool:
    root, _, rest = name.partition("/")
    key, st01 = ("file", "type") if root == "external" else ("corpus_path", "ST01")
    return any(row[key] == rest and row[st01] == "835" for row in _manifest(root))


# Every 835 the manifests name, and every file holding an ST*835 the manifest could not
# name (the 4010 case/1.edi, whose ISA pyx12 could not read).
FILES_835 = [name for name in ALL if _manifest_says_835(name) or _naive_has_835(_path(name).read_bytes())]


def test_the_835s_are_the_ones_the_manifests_name() -> None:
    assert sum(1 for name in ALL if _manifest_says_835(name)) == 29
    assert len(FILES_835) == 30


@pytest.mark.parametrize("name", FILES_835)
def test_835_money_equals_a_naive_count(name: str) -> None:
    path = _path(name)
    assert parsed_835_money(path) == naive_835_money(path.read_bytes())


@pytest.mark.parametrize("name", FILES_835)
def test_835_parse_and_validate_agree_on_the_money(name: str) -> None:
    """`edi parse`, posting (the same iter_835) and `edi validate` see the same sets and
    the same balancing verdict."""
    document = x835.parse_835_document(_path(name))
    report = validate(_path(name))
    assert len(document.transactions) == sum(1 for ts in report.transaction_sets if ts.st01 == "835")
    money = {"835_LINE_UNBALANCED", "835_CLAIM_UNBALANCED", "835_PAYMENT_UNBALANCED", "835_PAYMENT_NEGATIVE"}
    parsed = {f.code for f in document.all_findings() if f.code in money}
    validated = {f.code.removeprefix("X12.") for f in report.findings if f.code.removeprefix("X12.") in money}
    assert parsed == validated
