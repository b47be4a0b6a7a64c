"""Property: random balanced 835s, ingested in random order with duplicates, always end with the
ledger a hand model of the same remittances predicts (by account and claim, by remittance)."""

from __future__ import annotations

import uuid
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from claims_server.ledger import account_totals, balance
from claims_server.models import AccountCode, Remittance
from claims_server.remittance.services import receive_and_post
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim

PROCEDURES = ("99213", "99214", "85025", "80053", "93000", "36415")
# Pricing and patient-share reasons only on paid claims (denial reasons are held, see the cases tests).
CAS_CHOICES = (("CO", "45"), ("PR", "1"), ("PR", "2"), ("PR", "3"), ("OA", "94"), ("PI", "45"), ("CO", "253"))
ACCOUNT_OF = {
    "CO": AccountCode.CONTRACTUAL_ADJUSTMENTS.value,
    "PR": AccountCode.AR_PATIENT.value,
    "OA": AccountCode.OTHER_ADJUSTMENTS.value,
    "PI": AccountCode.OTHER_ADJUSTMENTS.value,
}


@st.composite
def line_plans(draw):
    charge = draw(st.integers(min_value=100, max_value=500_000))
    parts = draw(st.lists(st.sampled_from(CAS_CHOICES), max_size=3, unique=True))
    cuts = sorted(draw(st.lists(st.integers(0, charge), min_size=len(parts), max_size=len(parts))))
    amounts, previous = [], 0
    for cut in cuts:
        amounts.append(cut - previous)
        previous = cut
    paid = charge - previous
    return charge, paid, [(g, r, a) for (g, r), a in zip(parts, amounts, strict=True)]


@st.composite
def scenarios(draw):
    claims = draw(st.lists(st.lists(line_plans(), min_size=1, max_size=3), min_size=1, max_size=5))
    statuses = [draw(st.sampled_from(["1", "1", "2", "3", "4", "19"])) for _ in claims]
    n_files = draw(st.integers(1, min(3, len(claims))))
    owners = [draw(st.integers(0, n_files - 1)) for _ in claims]
    plbs = [
        draw(st.lists(st.tuples(st.sampled_from(["WO", "L6", "FB"]), st.integers(-5000, 5000)), max_size=3))
        for _ in range(n_files)
    ]
    copies = draw(st.lists(st.integers(0, n_files - 1), max_size=3))  # files sent twice
    order = draw(st.permutations(list(range(n_files)) + [n_files + i for i in range(len(copies))]))
    return claims, statuses, owners, plbs, copies, order


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenarios())
def test_random_order_with_duplicates_ends_with_the_model_ledger(session, world, factory, scenario):
    claim_plans, statuses, owners, plbs, copies, order = scenario
    run = uuid.uuid4().hex[:8].upper()
    claims = []
    for i, lines in enumerate(claim_plans):
        codes = [PROCEDURES[(i + k) % len(PROCEDURES)] for k in range(len(lines))]
        claims.append(
            make_claim(session, world, f"P{run}{i}", list(zip(codes, [c for c, _, _ in lines], strict=True)))
        )
    expected: dict[int, Counter[str]] = {}
    files: list[bytes] = []
    cash_by_trace: dict[str, int] = {}
    for f, plb in enumerate(plbs):
        clps = []
        for i, (lines, status, owner) in enumerate(zip(claim_plans, statuses, owners, strict=True)):
            if owner != f:
                continue
            claim = claims[i]
            svcs = []
            model: Counter[str] = Counter({AccountCode.GROSS_CHARGES.value: -sum(c for c, _, _ in lines)})
            model[AccountCode.AR_INSURANCE.value] += sum(c for c, _, _ in lines)
            for line, (charge, paid, cas) in zip(claim.service_lines, lines, strict=True):
                if status == "4":
                    svcs.append(
                        Svc(
                            line.procedure_code,
                            charge,
                            0,
                            [("CO", "50", charge)],
                            lcn=line.line_control_number,
                        )
                    )
                    continue
                svcs.append(Svc(line.procedure_code, charge, paid, cas, lcn=line.line_control_number))
                model[AccountCode.CASH_CLEARING.value] += paid
                model[AccountCode.AR_INSURANCE.value] -= charge
                for group, _, amount in cas:
                    model[ACCOUNT_OF[group]] += amount
            paid_total = sum(s.paid for s in svcs)
            clps.append(
                Clp(claim.patient_control_number, status, sum(s.charge for s in svcs), paid_total, lines=svcs)
            )
            expected[claim.id] = +model  # drop zero balances
        trace = f"{run}-{f}"
        net = sum(c.paid for c in clps) - sum(a for _, a in plb)
        if net < 0:  # BPR02 is never negative: the payer carries the rest as a forward balance
            plb = [*plb, ("FB", net)]
        files.append(build_835(clps, trace=trace, plb=plb, control=f + 1))
        cash_by_trace[trace] = sum(c.paid for c in clps) - sum(a for _, a in plb)
    for n, f in enumerate(copies):  # the same payment again, in another interchange (new ISA13)
        files.append(files[f] if n % 2 else files[f].replace(b"*0*T*:", b"*0*P*:"))
    for index in order:
        report = receive_and_post(factory, files[index])
        assert report.status in ("posted", "duplicate"), report.error
    session.expire_all()
    for claim in claims:
        actual = Counter(account_totals(session, claim_id=claim.id))
        assert +actual == expected[claim.id], claim.patient_control_number
    for trace, cash in cash_by_trace.items():
        rem = session.scalar(select(Remittance).where(Remittance.trace_number == trace))
        assert balance(session, [AccountCode.CASH_CLEARING.value], remittance_id=rem.id) == cash
    assert sum(account_totals(session).values()) == 0
