"""Property tests: any bytes, and any mutation of real files, give a report, never an exception.

The default run is a few seconds; ``python benchmarks/fuzz_edi.py --seconds 600`` runs the
same targets (:func:`mutate`, :func:`check_validate`) for longer.
"""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claims_server.cli_edi import edi_group
from edi.validate import ValidationReport, validate
from tests.unit.edi.test_validate import clean_837p, cob_837p, recount

CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus"
CORPUS_SEEDS = (
    "imsweb_x12-parser/src/test/resources/837_5010/x12_complex.txt",
    "kputnam_stupidedi/spec/fixtures/005010/X221A1_HP835_Health_Care_Claim_Payment_Advice/pass/era-sample.edi",
    "imsweb_x12-parser/src/test/resources/277_5010/x12_277CA_rejected.txt",
    "kputnam_stupidedi/spec/fixtures/005010/X223A2_HC837_Health_Care_Claim_Institutional/pass/ppo-repriced-claim.edi",
)


def seeds() -> list[bytes]:
    found = [recount(clean_837p()).encode(), recount(cob_837p()).encode()]
    for name in CORPUS_SEEDS:
        path = CORPUS / name
        if path.is_file():
            found.append(path.read_bytes())
    return found


SEEDS = seeds()
DELIMITERS = b"*:^~\r\n>|"


def mutate(data: bytes, operation: int, a: int, b: int) -> bytes:
    """One mutation of ``data``: byte flip, truncation, delimiter injection, duplicated or deleted segment."""
    if not data:
        return data
    i = a % len(data)
    if operation == 0:
        return data[:i] + bytes([data[i] ^ (1 + b % 255)]) + data[i + 1 :]
    if operation == 1:
        return data[:i]
    if operation == 2:
        return data[:i] + DELIMITERS[b % len(DELIMITERS) : b % len(DELIMITERS) + 1] + data[i:]
    segments = data.split(b"~")
    j = a % len(segments)
    if operation == 3:
        return b"~".join(segments[: j + 1] + segments[j:])
    return b"~".join(segments[:j] + segments[j + 1 :])


def check_validate(data: bytes) -> ValidationReport:
    """The fuzz target: a report whose findings are all well formed."""
    report = validate(data)
    assert isinstance(report, ValidationReport)
    for f in report.findings:
        assert f.code and f.message
        assert f.code != "X12.VALIDATOR_ERROR", f.message
    if not report.readable:
        assert not report.valid and report.findings
    json.dumps(report.to_json_dict())
    return report


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data: bytes) -> None:
    report = check_validate(data)
    assert not report.valid


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes_after_a_valid_isa_never_raise(tail: bytes) -> None:
    check_validate(SEEDS[0][:106] + tail)


@FUZZ
@given(
    st.sampled_from(range(len(SEEDS))),
    st.lists(
        st.tuples(st.integers(0, 4), st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=4
    ),
)
def test_mutated_files_never_raise(seed: int, operations: list[tuple[int, int, int]]) -> None:
    data = SEEDS[seed]
    for operation, a, b in operations:
        data = mutate(data, operation, a, b)
    check_validate(data)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(st.integers(0, 1 << 20), st.integers(0, 4), st.integers(0, 255))
def test_cli_exit_codes_on_mutated_input(tmp_path_factory, a: int, operation: int, b: int) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "input.x12"
    path.write_bytes(mutate(SEEDS[1], operation, a, b))
    result = CliRunner().invoke(edi_group, ["validate", str(path), "--json"])
    assert result.exit_code in (0, 1, 2)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    data = json.loads(result.output)
    assert data["valid"] is (result.exit_code == 0)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=1, max_size=200))
def test_cli_rejects_random_bytes_with_structured_output(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "input.bin"
    path.write_bytes(data)
    result = CliRunner().invoke(edi_group, ["validate", str(path), "--json"])
    assert result.exit_code in (1, 2)
    assert json.loads(result.output)["valid"] is False
