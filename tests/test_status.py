"""The status state machine (eslengine/status.py): statuses only move
forward, and channel events and originate results give each call its final
status, cause and the party that ended it."""

from __future__ import annotations

from eslengine.status import FINAL, STATUSES, CallState, can_move


def test_can_move_only_forward_and_never_out_of_final() -> None:
    assert can_move("queued", "dialing")
    assert can_move("dialing", "answered")  # skipping is fine
    assert not can_move("answered", "ringing")
    assert not can_move("ringing", "ringing")
    for final in FINAL:
        for status in STATUSES:
            assert not can_move(final, status)
    for status in set(STATUSES) - FINAL:
        assert can_move(status, "failed") and can_move(status, "cancelled")
    assert not can_move("queued", "bogus")


A, B = "aaaa-uuid", "bbbb-uuid"


def test_state_completed_call() -> None:
    st = CallState()
    assert st.on_event("a", "CHANNEL_CREATE", A) == {"a_uuid": A}
    assert st.on_event("a", "CHANNEL_PROGRESS", A) == {"status": "ringing"}
    assert st.on_event("a", "CHANNEL_ANSWER", A) == {"status": "answered"}
    assert st.on_originate_ok(A) == {}
    assert st.on_event("b", "CHANNEL_CREATE", B) == {}
    assert st.on_event("b", "CHANNEL_ANSWER", B) == {"b_uuid": B}
    assert st.on_event("a", "CHANNEL_BRIDGE", A) == {"status": "bridged"}
    # The second party hangs up first: its cause is the call's.
    assert st.on_event("b", "CHANNEL_HANGUP", B, "NORMAL_CLEARING") == {"b_hangup_cause": "NORMAL_CLEARING"}
    assert st.on_event("a", "CHANNEL_HANGUP", A, "NORMAL_CLEARING") == {}
    assert st.on_event("a", "CHANNEL_HANGUP_COMPLETE", A, "NORMAL_CLEARING") == {
        "a_hangup_cause": "NORMAL_CLEARING", "hangup_cause": "NORMAL_CLEARING", "status": "completed",
        "ended_by": "b"}
    assert st.on_event("b", "CHANNEL_HANGUP_COMPLETE", B, "NORMAL_CLEARING") == {}
    assert st.status == "completed"


def test_state_time_limit_cause_comes_from_the_leg_that_hung_up_first() -> None:
    st = CallState()
    st.on_event("a", "CHANNEL_CREATE", A)
    st.on_event("a", "CHANNEL_ANSWER", A)
    st.on_event("b", "CHANNEL_ANSWER", B)
    st.on_event("a", "CHANNEL_BRIDGE", A)
    st.on_event("b", "CHANNEL_HANGUP", B, "ALLOTTED_TIMEOUT")
    st.on_event("a", "CHANNEL_HANGUP", A, "NORMAL_CLEARING")
    fields = st.on_event("a", "CHANNEL_HANGUP_COMPLETE", A, "NORMAL_CLEARING")
    assert (fields["status"], fields["hangup_cause"]) == ("completed", "ALLOTTED_TIMEOUT")


def test_state_b_busy_fails_with_b_cause() -> None:
    st = CallState()
    st.on_event("a", "CHANNEL_CREATE", A)
    st.on_event("a", "CHANNEL_ANSWER", A)
    st.on_event("b", "CHANNEL_CREATE", B)
    st.on_event("b", "CHANNEL_HANGUP_COMPLETE", B, "USER_BUSY")
    st.on_event("a", "CHANNEL_HANGUP", A, "NORMAL_CLEARING")
    fields = st.on_event("a", "CHANNEL_HANGUP_COMPLETE", A, "NORMAL_CLEARING")
    assert fields["status"] == "failed" and fields["hangup_cause"] == "USER_BUSY"
    assert fields["failed_party"] == "b"


def test_state_the_first_party_hanging_up_while_the_second_rings_failed_it() -> None:
    st = CallState()
    st.on_event("a", "CHANNEL_ANSWER", A)
    st.on_event("b", "CHANNEL_PROGRESS", B)
    st.on_event("a", "CHANNEL_HANGUP", A, "NORMAL_CLEARING")
    st.on_event("b", "CHANNEL_HANGUP", B, "ORIGINATOR_CANCEL")
    fields = st.on_event("a", "CHANNEL_HANGUP_COMPLETE", A, "NORMAL_CLEARING")
    assert (fields["status"], fields["hangup_cause"], fields["failed_party"]) == ("failed", "ORIGINATOR_CANCEL", "a")
    # Hanging up before the second party was even rung: the first party left too.
    st = CallState()
    st.on_event("a", "CHANNEL_ANSWER", A)
    st.on_event("a", "CHANNEL_HANGUP", A, "NORMAL_CLEARING")
    assert st.on_event("a", "CHANNEL_HANGUP_COMPLETE", A, "NORMAL_CLEARING")["failed_party"] == "a"


def test_state_a_connected_call_cancelled_is_completed_and_ended_by_the_api() -> None:
    st = CallState()
    st.on_event("a", "CHANNEL_ANSWER", A)
    st.on_event("b", "CHANNEL_ANSWER", B)
    st.on_event("a", "CHANNEL_BRIDGE", A)
    st.cancel_requested = True
    st.on_event("a", "CHANNEL_HANGUP", A, "NORMAL_CLEARING")
    fields = st.on_event("a", "CHANNEL_HANGUP_COMPLETE", A, "NORMAL_CLEARING")
    assert (fields["status"], fields["ended_by"]) == ("completed", "api")
    # The first party hanging up first: ended by a.
    st = CallState()
    st.on_event("a", "CHANNEL_ANSWER", A)
    st.on_event("b", "CHANNEL_ANSWER", B)
    st.on_event("a", "CHANNEL_BRIDGE", A)
    st.on_event("a", "CHANNEL_HANGUP", A, "NORMAL_CLEARING")
    st.on_event("b", "CHANNEL_HANGUP", B, "NORMAL_CLEARING")
    assert st.on_event("a", "CHANNEL_HANGUP_COMPLETE", A, "NORMAL_CLEARING")["ended_by"] == "a"


def test_state_bridge_cause_from_a_leg_when_b_event_missing() -> None:
    st = CallState()
    st.on_event("a", "CHANNEL_CREATE", A)
    st.on_event("a", "CHANNEL_ANSWER", A)
    fields = st.on_event("a", "CHANNEL_HANGUP_COMPLETE", A, "NORMAL_CLEARING", "NO_ANSWER")
    assert (fields["status"], fields["hangup_cause"]) == ("failed", "NO_ANSWER")


def test_state_originate_failure_and_late_events_are_ignored() -> None:
    st = CallState()
    st.on_event("a", "CHANNEL_CREATE", A)
    # Before the result, a hangup may be one attempt of several: not final.
    assert st.on_event("a", "CHANNEL_HANGUP_COMPLETE", A, "USER_BUSY") == {}
    fields = st.on_originate_failed("USER_BUSY")
    assert fields == {"a_hangup_cause": "USER_BUSY", "hangup_cause": "USER_BUSY", "status": "failed",
                      "failed_party": "a"}
    assert st.on_event("a", "CHANNEL_HANGUP_COMPLETE", A, "USER_BUSY") == {}
    assert st.on_originate_failed("NO_ANSWER") == {}


def test_state_failover_and_simultaneous_winner() -> None:
    # First destination busy, second (another uuid) answers: the winner's leg counts.
    st = CallState()
    st.on_event("a", "CHANNEL_CREATE", A)
    st.on_event("a", "CHANNEL_HANGUP_COMPLETE", A, "USER_BUSY")
    assert not st.final
    st.on_event("a", "CHANNEL_CREATE", "winner")
    assert st.on_event("a", "CHANNEL_ANSWER", "winner") == {"a_uuid": "winner", "status": "answered"}
    assert st.on_originate_ok("winner") == {}
    assert st.on_event("a", "CHANNEL_HANGUP_COMPLETE", A, "LOSE_RACE") == {}
    assert st.on_event("a", "CHANNEL_HANGUP_COMPLETE", "winner", "NORMAL_CLEARING")["status"] == "failed"


def test_state_early_media_result_then_no_answer() -> None:
    # ignore_early_media=false: +OK on early media, then the leg gives up.
    st = CallState()
    st.on_event("a", "CHANNEL_CREATE", A)
    st.on_event("a", "CHANNEL_PROGRESS_MEDIA", A)
    st.on_originate_ok(A)
    fields = st.on_event("a", "CHANNEL_HANGUP_COMPLETE", A, "NO_ANSWER")
    assert (fields["status"], fields["hangup_cause"]) == ("failed", "NO_ANSWER")


def test_state_cancel() -> None:
    st = CallState(cancel_requested=True)
    st.on_event("a", "CHANNEL_CREATE", A)
    st.on_event("a", "CHANNEL_PROGRESS", A)
    fields = st.on_originate_failed("ORIGINATOR_CANCEL")
    assert (fields["status"], fields["hangup_cause"]) == ("cancelled", "ORIGINATOR_CANCEL")
