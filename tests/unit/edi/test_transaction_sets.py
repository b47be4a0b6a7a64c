"""The shared walk over interchanges, groups and transaction sets (edi.envelope.iter_envelope)."""

from __future__ import annotations

import io

import pytest

from edi.envelope import (
    OutsideSegment,
    TransactionSet,
    first_transaction,
    iter_envelope,
    iter_transaction_sets,
)
from edi.reader import X12SyntaxError
from edi.x999 import parse_999

ISA1 = "ISA*00*          *00*          *ZZ*CLEAR01        *ZZ*SUBMIT01       *260301*0800*^*00501*000000041*0*T*:~"
ISA2 = "ISA*00*          *00*          *ZZ*PAYER02        *30*SUBMIT01       *260302*0915*^*00501*000000042*0*P*:~"
ACK_999 = "AK1*HC*17*005010X222A1~AK9*A*1*1*1~"
TWO_INTERCHANGES = (
    ISA1
    + "TA1*000000017*260228*1200*A*000~"
    + "GS*FA*CLEAR01*SUBMIT01*20260301*0800*5*X*005010X231A1~"
    + "ST*999*0001*005010X231A1~"
    + ACK_999
    + "SE*4*0001~"
    + "ST*999*0002*005010X231A1~"
    + ACK_999
    + "SE*4*0002~"
    + "GE*2*5~IEA*1*000000041~"
    + ISA2
    + "GS*HN*PAYER02*SUBMIT01*20260302*0915*9*X*005010X214~"
    + "ST*277*1001*005010X214~BHT*0085*08*REF1*20260302*0915*TH~SE*3*1001~"
    + "GE*1*9~IEA*1*000000042~"
)


def test_each_set_carries_its_interchange_group_and_positions() -> None:
    seen = []
    for ts in iter_transaction_sets(TWO_INTERCHANGES):
        body = list(ts)
        assert ts.interchange is not None and ts.group is not None and ts.se is not None
        seen.append(
            (
                ts.id,
                ts.control_number,
                ts.implementation,
                ts.interchange.control_number,
                ts.interchange.sender_id,
                ts.interchange.receiver_qualifier,
                ts.interchange.usage,
                ts.group.functional_id,
                ts.group.control_number,
                ts.group.version,
                [s.id for s in body],
                [ts.position(s) for s in body],
                ts.position(ts.se),
            )
        )
    assert seen == [
        ("999", "0001", "005010X231A1", "000000041", "CLEAR01", "ZZ", "T", "FA", "5", "005010X231A1",
         ["AK1", "AK9"], [2, 3], 4),
        ("999", "0002", "005010X231A1", "000000041", "CLEAR01", "ZZ", "T", "FA", "5", "005010X231A1",
         ["AK1", "AK9"], [2, 3], 4),
        ("277", "1001", "005010X214", "000000042", "PAYER02", "30", "P", "HN", "9", "005010X214",
         ["BHT"], [2], 3),
    ]  # fmt: skip


def test_unread_bodies_are_skipped_and_outside_segments_keep_their_interchange() -> None:
    parts = list(iter_envelope(io.BytesIO(TWO_INTERCHANGES.encode())))
    kinds = [type(p).__name__ for p in parts]
    assert kinds == ["OutsideSegment", "TransactionSet", "TransactionSet", "TransactionSet"]
    ta1 = parts[0]
    assert isinstance(ta1, OutsideSegment) and ta1.segment.id == "TA1" and ta1.group is None
    assert ta1.interchange is not None and ta1.interchange.control_number == "000000041"
    # Bodies left unread were skipped, so iterating one now yields nothing more.
    last = parts[-1]
    assert isinstance(last, TransactionSet) and list(last) == []


def test_a_missing_se_ends_the_set_at_the_next_envelope_segment() -> None:
    text = (
        ISA1
        + "GS*FA*CLEAR01*SUBMIT01*20260301*0800*5*X*005010X231A1~"
        + "ST*999*0001*005010X231A1~"
        + ACK_999
        + "ST*999*0002*005010X231A1~"
        + ACK_999
        + "SE*4*0002~GE*2*5~IEA*1*000000041~"
    )
    sets = [(ts.control_number, [s.id for s in ts], ts.se is None) for ts in iter_transaction_sets(text)]
    assert sets == [("0001", ["AK1", "AK9"], True), ("0002", ["AK1", "AK9"], False)]
    # The 999 parser keeps the acknowledgment read before the missing SE and says so.
    document = parse_999(text)
    assert [a.control_number for a in document.acks] == ["0001", "0002"]
    assert [f.code for f in document.findings] == ["999_SE_MISSING"]


def test_a_set_truncated_at_the_end_of_the_file() -> None:
    text = ISA1 + "GS*FA*CLEAR01*SUBMIT01*20260301*0800*5*X*005010X231A1~ST*999*0001*005010X231A1~" + ACK_999
    read = [([s.id for s in ts], ts.se) for ts in iter_transaction_sets(text)]
    assert read == [(["AK1", "AK9"], None)]


def test_unreadable_input_raises_from_the_walk() -> None:
    with pytest.raises(X12SyntaxError) as caught:
        for ts in iter_transaction_sets(TWO_INTERCHANGES[:-1].encode()):
            list(ts)
    assert caught.value.code == "SEGMENT_UNTERMINATED"


def test_first_transaction_reads_the_head_only() -> None:
    # The tail is unreadable, but the first ST comes before it: nothing past it is read.
    head = first_transaction(TWO_INTERCHANGES + "SE*1")
    assert (head.st01, head.st03, head.gs08, head.has_ta1) == ("999", "005010X231A1", "005010X231A1", True)
    assert head.interchange is not None and head.interchange.control_number == "000000041"
    # A TA1 alone: no transaction set; an ST outside any group keeps its ST03 but has no GS08.
    ta1_only = first_transaction(ISA1 + "TA1*000000017*260228*1200*A*000~IEA*0*000000041~")
    assert (ta1_only.st01, ta1_only.gs08, ta1_only.has_ta1) == ("", "", True)
    bare = first_transaction(ISA2 + "ST*277*1001*005010X214~SE*2*1001~IEA*0*000000042~")
    assert (bare.st01, bare.st03, bare.gs08, bare.has_ta1) == ("277", "005010X214", "", False)
    assert bare.interchange is not None and bare.interchange.sender_id == "PAYER02"
    with pytest.raises(X12SyntaxError):
        first_transaction(b"not X12")
