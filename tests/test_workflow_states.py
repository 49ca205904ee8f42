"""The state rules derived from the transition table, held against sets written here by hand.

A change of the table that moves one of these sets (a new state, a transition that closes or
re-opens) fails here first, and must be decided on purpose.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from instruction.backoffice import queries
from instruction.dossiers import workflow
from instruction.dossiers.models import STATES
from instruction.rules.parameters import window_problem


def test_the_named_state_sets():
    assert workflow.VISIBLE_STATES == ("received", "incomplete", "eligible", "granted", "paid",
                                       "ineligible", "refused", "withdrawn", "expired")
    assert workflow.EDITABLE_STATES == ("draft", "incomplete")
    assert workflow.PENDING_STATES == ("received", "incomplete", "eligible")
    assert workflow.CONSUMING_STATES == ("granted", "paid")
    assert workflow.CLOSED_STATES == ("paid", "ineligible", "refused", "withdrawn", "expired")
    assert workflow.WAITING_STATES == ("received", "eligible")
    assert workflow.ASSIGNABLE_ROLES == ("instructor", "admin")


def test_the_sets_agree_with_the_table():
    moves = [t for t in workflow.TRANSITIONS.values() if t.target is not None]
    # Every state is reached from the draft (or is the draft).
    assert {workflow.INITIAL_STATE} | {t.target for t in moves} == set(STATES)
    # Only the applicant moves a dossier out of an editable state (they own it there); the worker
    # expires it, an admin may extend its deadline.
    for t in moves:
        if set(t.sources) & set(workflow.EDITABLE_STATES) and t.action not in ("expire", "extend_deadline"):
            assert t.roles == ("applicant",), t.action
    # Out of a closed state, only an admin moves a dossier: reopening an instruction, or extending
    # the deadline of an expired draft.
    # (and a payment recorded by mistake is cancelled by finance or an admin, reopening a paid dossier).
    for t in moves:
        if set(t.sources) & set(workflow.CLOSED_STATES):
            assert (t.roles == ("admin",) and t.action in ("reopen", "extend_deadline")) or \
                (t.action == "cancel_payment" and t.roles == ("finance", "admin")), t.action
    # A pending dossier can still be granted without an admin; a consuming one was granted.
    for state in workflow.PENDING_STATES:
        assert "granted" in _reachable(state, [t for t in moves if t.roles != ("admin",)]), state
    for state in workflow.CONSUMING_STATES:
        assert "grant" in workflow.path_to(state)
    # Out of a consuming state, only an admin's cancellation returns the dossier to instruction;
    # the caducité (the system's nightly job) closes it, giving the grant back to the envelope.
    back = [t.action for t in moves if set(t.sources) & set(workflow.CONSUMING_STATES)
            and t.target not in workflow.CONSUMING_STATES]
    assert sorted(back) == ["cancel_grant", "lapse"] and workflow.TRANSITIONS["cancel_grant"].roles == ("admin",)
    lapse = workflow.TRANSITIONS["lapse"]
    assert lapse.roles == (workflow.SYSTEM,) and lapse.releases and lapse.target in workflow.CLOSED_STATES


def _reachable(state, moves) -> set[str]:
    found = {state}
    while more := {t.target for t in moves if found & set(t.sources)} - found:
        found |= more
    return found


@pytest.mark.parametrize(("state", "path"), [
    ("draft", []),
    ("received", ["submit"]),
    ("incomplete", ["submit", "request_documents"]),
    ("eligible", ["submit", "declare_eligible"]),
    ("granted", ["submit", "declare_eligible", "grant"]),
    ("paid", ["submit", "declare_eligible", "grant", "record_final_payment"]),
    ("ineligible", ["submit", "declare_ineligible"]),
    ("refused", ["submit", "refuse"]),
    ("withdrawn", ["submit", "withdraw"]),
    ("expired", ["expire"]),
])
def test_demo_paths_follow_the_table(state, path):
    assert workflow.path_to(state) == path


def test_queue_tabs_partition_the_visible_states():
    tabs = {key: tab.states for key, tab in queries.TABS.items()}
    assert tabs["a-instruire"] == ("received", "incomplete", "eligible")
    assert tabs["decides"] == ("granted",)
    assert tabs["verses"] == ("paid",)
    assert tabs["clos"] == ("ineligible", "refused", "withdrawn", "expired")
    split = [s for key in ("a-instruire", "decides", "verses", "clos") for s in tabs[key]]
    assert sorted(split) == sorted(workflow.VISIBLE_STATES) and tabs["tous"] == workflow.VISIBLE_STATES


def test_taking_a_dossier_is_declared_in_the_table():
    assign = workflow.TRANSITIONS["assign"]
    assert assign.target is None and assign.sources == workflow.VISIBLE_STATES
    assert assign.roles == ("instructor", "admin") and not assign.listed


OPENS = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)  # 1 January 2026, 00:00 in Paris
DEADLINE = datetime(2027, 6, 30, 22, 0, tzinfo=UTC)  # 1 July 2027, 00:00 in Paris


@pytest.mark.parametrize(("at", "message"), [
    (datetime(2025, 12, 31, 22, 59, 59, tzinfo=UTC),
     "La campagne n'est pas encore ouverte : les dossiers sont acceptés à partir du 1er janvier 2026."),
    (OPENS, None),
    (datetime(2027, 6, 30, 21, 59, 59, tzinfo=UTC), None),
    (DEADLINE, "Date limite dépassée : les dépôts étaient possibles jusqu'au 30 juin 2027 inclus."),
])
def test_one_deadline_rule_with_one_message(at, message):
    assert window_problem(OPENS, DEADLINE, at) == message


def test_every_state_has_its_colour():
    from instruction.web.filters import STATE_STYLES

    assert set(STATE_STYLES) == set(STATES)
