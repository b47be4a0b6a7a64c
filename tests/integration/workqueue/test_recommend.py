"""The playbook decision: one action per adjustment, with the playbook's overriding rules."""

from __future__ import annotations

import pytest

from claims_server.workqueue.services import (
    RecommendedAction,
    reason_code_labels,
    recommend_action,
    recommend_for_codes,
)

A = RecommendedAction


@pytest.mark.parametrize(
    ("group", "carc", "rarcs", "other_coverage", "expected"),
    [
        ("CO", "16", ["N290"], False, A.CORRECT_AND_RESUBMIT),
        ("CO", "16", ["MA130"], False, A.CORRECT_AND_RESUBMIT),
        ("CO", "50", [], False, A.APPEAL),
        ("CO", "45", [], False, A.WRITE_OFF),
        ("CO", "29", [], False, A.WRITE_OFF),
        ("CO", "22", [], False, A.BILL_SECONDARY),
        ("PR", "1", [], False, A.BILL_PATIENT),
        ("PR", "1", [], True, A.BILL_SECONDARY),
        ("PR", "3", [], True, A.BILL_PATIENT),
        ("PR", "204", [], True, A.BILL_SECONDARY),
        ("PR", "204", [], False, A.BILL_PATIENT),
        ("PR", "96", [], False, A.BILL_PATIENT),  # PR: billed, never written off
        ("CO", "96", [], False, A.WRITE_OFF),
        ("PR", "1", ["MA18"], True, A.REVIEW),  # crossed over: the supplemental was billed for us
        ("PR", "2", ["N782"], False, A.BILL_SECONDARY),  # QMB: never the patient
        ("CO", "50", ["N211"], False, A.WRITE_OFF),  # no appeal rights
        ("OA", "18", ["N111"], False, A.REVIEW),
        ("CO", "A1", ["M51"], False, A.CORRECT_AND_RESUBMIT),  # A1: route by the remark
        ("CO", "26", [], True, A.BILL_SECONDARY),  # CO: the patient may not be billed
        ("CO", "26", [], False, A.BILL_SECONDARY),
        ("CO", "B13", [], False, A.REVIEW),
        ("CO", "999", [], False, A.WRITE_OFF),  # unknown CARC: falls back to the group's action
        ("ZZ", "999", [], False, A.REVIEW),  # nothing known: a person reviews
    ],
)
def test_actions_follow_the_playbook(group, carc, rarcs, other_coverage, expected):
    action, explanation = recommend_action(group, carc, rarcs, has_other_coverage=other_coverage)
    assert action is expected
    assert explanation.startswith(f"{group}-{carc}: ")


def test_explanation_names_every_code_and_the_next_step():
    action, explanation = recommend_action(" co ", "16", ["n290", "MA130"])
    assert action is A.CORRECT_AND_RESUBMIT
    assert "CO-16: Claim lacks information" in explanation
    assert "N290: Rendering provider identifier" in explanation
    assert "MA130:" in explanation
    assert "new original claim (frequency 1)" in explanation
    replacement = recommend_action("CO", "4", [])
    assert "frequency 7" in replacement.explanation and "REF*F8" in replacement.explanation


def test_unknown_codes_are_said_to_be_unknown_not_raised():
    _, explanation = recommend_action("CO", "Q99", ["X1"])
    assert "not in our playbook" in explanation
    assert "X1: remark code not in our playbook" in explanation


def test_the_most_actionable_code_leads_a_claim():
    result = recommend_for_codes([("CO", "45"), ("CO", "16"), ("CO", "45")], ["N290"])
    assert result.action is A.CORRECT_AND_RESUBMIT
    assert result.explanation.startswith("CO-16: ")
    assert "CO-45 → write_off" in result.explanation
    assert recommend_for_codes([], []).action is A.REVIEW


def test_reason_code_labels_are_unique_and_ordered():
    assert reason_code_labels([("co", "16"), ("CO", "16"), ("PR", "2")], ["n290"]) == [
        "CO-16",
        "PR-2",
        "N290",
    ]
