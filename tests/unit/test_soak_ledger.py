"""The soak's judge (`cairn.bench.soak_ledger`): which views an answer may show around an ACL change,
a deletion and a key revocation."""

from __future__ import annotations

from cairn.bench.soak_ledger import SoakLedger

FINANCE = frozenset({"finance"})
ENG = frozenset({"eng"})


def _ledger() -> SoakLedger:
    """One document uploaded for finance (sent at 1 s, acknowledged at 2 s) and two keys."""
    ledger = SoakLedger()
    ledger.key_created("fin", FINANCE)
    ledger.key_created("eng", ENG)
    ledger.upload_sent("doc.md", FINANCE, 1.0)
    ledger.upload_acked("doc.md", "job-1", 2.0)
    return ledger


def test_a_passage_the_key_may_see_is_no_violation_and_one_it_may_not_is() -> None:
    """Finance sees a finance document; engineering shown it is a violation; an unknown source is too."""
    ledger = _ledger()
    ledger.check_passages("fin", ["upload:doc.md"], 3.0, 3.5, "search")
    assert ledger.violation_count == 0
    ledger.check_passages("eng", ["upload:doc.md"], 3.0, 3.5, "search")
    ledger.check_passages("fin", ["upload:other.md"], 3.0, 3.5, "search")
    assert ledger.violation_count == 2
    assert "eng" in ledger.violations[0]
    assert "other.md" in ledger.violations[1]


def test_the_old_view_is_accepted_only_from_requests_sent_before_the_change_was_acknowledged() -> None:
    """ACL changed from finance to eng, sent at 10 s and acknowledged at 11 s: a finance answer to a request
    sent at 10.5 s (in flight during the change) is fine; one sent at 11.2 s is a violation; eng may see it
    from the moment the change was sent, not before."""
    ledger = _ledger()
    epoch = ledger.change_sent("doc.md", ENG, 10.0)
    ledger.acked(epoch, 11.0)
    ledger.check_passages("fin", ["upload:doc.md"], 10.5, 11.5, "search")
    ledger.check_passages("eng", ["upload:doc.md"], 10.5, 11.5, "search")
    assert ledger.violation_count == 0
    ledger.check_passages("eng", ["upload:doc.md"], 5.0, 6.0, "search")  # before the change was even sent
    ledger.check_passages("fin", ["upload:doc.md"], 11.2, 11.4, "search")
    assert ledger.violation_count == 2


def test_a_deleted_document_may_not_be_shown_to_a_request_sent_after_the_deletion_was_acknowledged() -> None:
    """Deleted at 20 s (acknowledged 20.5 s): shown to a request sent at 20.2 s is fine, at 21 s it is not."""
    ledger = _ledger()
    epoch = ledger.change_sent("doc.md", None, 20.0)
    ledger.acked(epoch, 20.5)
    ledger.check_passages("fin", ["upload:doc.md"], 20.2, 20.9, "ask")
    assert ledger.violation_count == 0
    ledger.check_passages("fin", ["upload:doc.md"], 21.0, 21.1, "ask")
    assert ledger.violation_count == 1
    assert ledger.documents["doc.md"].expected() == "absent"


def test_an_unacknowledged_change_leaves_both_views_possible_and_the_outcome_unknown() -> None:
    """A change whose call failed may or may not have happened: either view is accepted afterwards, and the
    final check expects neither presence nor absence."""
    ledger = _ledger()
    ledger.change_sent("doc.md", ENG, 30.0)  # never acknowledged
    ledger.check_passages("fin", ["upload:doc.md"], 40.0, 40.1, "search")
    ledger.check_passages("eng", ["upload:doc.md"], 40.0, 40.1, "search")
    assert ledger.violation_count == 0
    assert ledger.documents["doc.md"].expected() == "unknown"


def test_a_revoked_key_must_be_refused_after_the_revocation_was_acknowledged() -> None:
    """Revocation acknowledged at 50 s: an answer to a request sent at 49 s is fine, a 401 at 51 s counts as
    refused, an answer (200) to a request sent at 51 s is a violation."""
    ledger = _ledger()
    ledger.revoke_sent("fin", 49.5)
    ledger.revoke_acked("fin", 50.0)
    ledger.check_passages("fin", ["upload:doc.md"], 49.0, 50.2, "search")
    ledger.check_refusal("fin", 401, 51.0, "probe")
    assert ledger.violation_count == 0
    assert ledger.revoked_refused == 1
    ledger.check_refusal("fin", 200, 51.0, "probe")
    ledger.check_passages("fin", [], 51.0, 51.2, "search")
    assert ledger.violation_count == 2
    assert ledger.summary()["revoked_key_requests_accepted"] == 2


def test_shifting_the_clock_keeps_every_judgement() -> None:
    """After the clock restarts (times moved back by 10 s), the same request, 10 s earlier on the new clock,
    is judged the same way: the document existed before it, and a revocation still counts."""
    ledger = _ledger()
    ledger.revoke_sent("eng", 3.0)
    ledger.revoke_acked("eng", 4.0)
    ledger.shift(10.0)
    ledger.check_passages("fin", ["upload:doc.md"], 0.0, 0.5, "search")
    assert ledger.violation_count == 0
    ledger.check_refusal("eng", 200, -5.0, "probe")
    assert ledger.violation_count == 1
