"""Participant webhooks LiveKit stopped retrying: the rooms sweep reconciles each live room with
LiveKit's list of participants (rooms.reconcile), announcing the missing `participant.joined` /
`participant.left` and billing the minutes once; a late webhook adds nothing. With the fault matrix
(test_reliability_faults.py's rules and table): each step of the reconcile fails once or dies, the
next sweep completes it. Real MongoDB-wire server, Redis and the LiveKit stand-in; moto for AWS."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fault_support import (
    Faults,
    Killed,
    age_outbox,
    events_of,
    ledger_error,
    livekit_error,
    mongo_error,
    record,
    write_matrix,
)
from livekit_support import EventTap, LiveKit, deliver
from rooms import lk, reconcile, records, session_store
from rooms import sweep as rooms_sweep
from rooms.config import live_settings
from rooms.handler import handler as rooms_handler
from tutor_support import ROOM_ID, join, open_class
from verriflo import db, ledger
from verriflo.orgs import now

pytest_plugins = ("livekit_support", "tutor_support")


@pytest.fixture(scope="module", autouse=True)
def matrix_report() -> Iterator[None]:
    yield
    write_matrix()


def later() -> Any:
    """A sweep's clock once LiveKit's own retries are surely over (the grace has passed)."""
    return now() + timedelta(seconds=live_settings().reconcile_grace_s + 60)


def sessions_of(uid: str) -> list[dict[str, Any]]:
    return list(db.collection(records.SESSIONS).find({"uid": uid}))


def an_hour_in_class(uid: str) -> None:
    """The participant joined 75 minutes ago and a sweep last saw them 15 minutes ago (moved, not
    waited for)."""
    for s in sessions_of(uid):
        moved = {
            "joinedAt": s["joinedAt"] - timedelta(minutes=75),
            "seenAt": s["seenAt"] - timedelta(minutes=15),
        }
        db.collection(records.SESSIONS).update_one({"_id": s["_id"]}, {"$set": moved})


def sweep_later(lambda_context: Any) -> None:
    """The next scheduled sweeps, minutes later: pending effects are old enough to drain."""
    for doc in db.collection(records.SESSIONS).find({}, {"_id": 1}):
        age_outbox(records.SESSIONS, doc["_id"])
    rooms_sweep.handler({}, lambda_context)


def live_charges(uid: str) -> int:
    return db.collection(ledger.LEDGER).count_documents({"service": "live", "meta.uid": uid})


# --- a lost participant_joined -------------------------------------------------------------------


@pytest.fixture
def lost_join(org, livekit: LiveKit, lambda_context, event_tap: EventTap):
    """A class with its teacher and s-1; s-2 joins, and LiveKit's participant_joined never arrives."""
    open_class(org, livekit, lambda_context)
    livekit.join(f"{org.id}.{ROOM_ID}", join(org, lambda_context, ROOM_ID, "s-2", "STUDENT"))
    (lost,) = livekit.wait_for("participant_joined")
    event_tap.drain()
    return lost


def test_a_join_livekit_never_reported_is_found_in_its_room_and_announced_once(
    org, livekit: LiveKit, lambda_context, event_tap: EventTap, lost_join
):
    # within the grace LiveKit may still deliver it: the sweep waits
    assert reconcile.participants() == {"joined": 0, "left": 0}
    assert sessions_of("s-2") == []
    assert reconcile.participants(at=later()) == {"joined": 1, "left": 0}
    assert reconcile.participants(at=later()) == {"joined": 0, "left": 0}
    [session] = sessions_of("s-2")
    assert session["role"] == "STUDENT" and session["openedBy"] == "sweep" and session["leftAt"] is None
    seen: list[dict[str, Any]] = []
    assert events_of(event_tap, seen, "participant.joined")["participant.joined"] == (1, 1)
    # LiveKit's very late delivery: acknowledged, nothing announced twice
    assert deliver(rooms_handler, lambda_context, lost_join).status == 200
    assert events_of(event_tap, seen, "participant.joined")["participant.joined"] == (1, 1)
    # the participant leaves as usual: one participant.left, one charge
    livekit.leave(f"{org.id}.{ROOM_ID}", "s-2")
    livekit.pump(rooms_handler, lambda_context, "participant_left")
    assert events_of(event_tap, seen, "participant.left")["participant.left"] == (1, 1)
    assert live_charges("s-2") == 1 and len(sessions_of("s-2")) == 1


# --- a lost participant_left ---------------------------------------------------------------------


@pytest.fixture
def lost_leave(org, livekit: LiveKit, lambda_context, event_tap: EventTap):
    """s-1 was in class an hour (a sweep saw them), then left; LiveKit's participant_left never
    arrives."""
    open_class(org, livekit, lambda_context)
    rooms_sweep.handler({}, lambda_context)  # sees s-1 connected
    an_hour_in_class("s-1")
    livekit.leave(f"{org.id}.{ROOM_ID}", "s-1")
    (lost,) = livekit.wait_for("participant_left")
    event_tap.drain()
    return lost


def test_a_leave_livekit_never_reported_is_billed_once_until_the_participant_was_last_seen(
    org, lambda_context, event_tap: EventTap, lost_leave
):
    [before] = sessions_of("s-1")
    assert rooms_sweep.handler({}, lambda_context)["left"] == 1
    assert rooms_sweep.handler({}, lambda_context)["left"] == 0
    [session] = sessions_of("s-1")
    assert session["closedBy"] == "sweep" and session["leftAt"] == before["seenAt"]
    assert abs(session["seconds"] - 3600) < 60  # the hour they were seen in class, not more
    [charge] = list(db.collection(ledger.LEDGER).find({"service": "live", "meta.uid": "s-1"}))
    assert charge["entryId"] == f"live:{session['_id']}"
    seen: list[dict[str, Any]] = []
    assert events_of(event_tap, seen, "participant.left")["participant.left"] == (1, 1)
    # LiveKit's very late delivery: nothing announced or charged twice
    assert deliver(rooms_handler, lambda_context, lost_leave).status == 200
    assert events_of(event_tap, seen, "participant.left")["participant.left"] == (1, 1)
    assert live_charges("s-1") == 1
    # the teacher, still connected, is untouched
    [teacher] = sessions_of("t-1")
    assert teacher["leftAt"] is None and live_charges("t-1") == 0


def test_a_participant_gone_only_moments_ago_is_left_to_livekits_own_webhook(
    org, livekit: LiveKit, lambda_context, event_tap: EventTap
):
    open_class(org, livekit, lambda_context)
    livekit.leave(f"{org.id}.{ROOM_ID}", "s-1")
    (left,) = livekit.wait_for("participant_left")
    assert rooms_sweep.handler({}, lambda_context)["left"] == 0  # within the grace
    assert deliver(rooms_handler, lambda_context, left).status == 200
    [session] = sessions_of("s-1")
    assert session.get("closedBy") is None and live_charges("s-1") == 1


# --- the matrix: each step of the reconcile fails once ------------------------------------------------


def join_steps() -> dict[str, tuple[Any, str, Any, bool]]:
    return {
        "livekit.list_participants": (lk, "list_participants", livekit_error, False),
        "mongo.open_session": (session_store, "open_session", mongo_error, False),
        "lambda.killed_after_open": (session_store, "open_session", Killed, True),
    }


@pytest.mark.parametrize("step", [*join_steps(), "eventbridge.put_events"])
def test_reconciling_a_lost_join_survives_one_fault_at_any_step(
    org, lambda_context, event_tap: EventTap, monkeypatch, lost_join, step
):
    faults = Faults(monkeypatch)
    faults.inject(step, join_steps(), "participant.joined")
    try:
        first = str(reconcile.participants(at=later()))
    except Killed:
        first = "killed"
    reconcile.participants(at=later())  # the next sweep
    sweep_later(lambda_context)
    counts = events_of(event_tap, [], "participant.joined") | {"session": len(sessions_of("s-2"))}
    record(faults, "rooms sweep: lost participant_joined", step, "next sweep", first, counts)


def leave_steps() -> dict[str, tuple[Any, str, Any, bool]]:
    return {
        "livekit.list_participants": (lk, "list_participants", livekit_error, False),
        "mongo.close_session": (session_store, "close_session", mongo_error, False),
        "ledger.record_usage": (ledger, "record_usage", ledger_error, False),
        "mongo.charged": (session_store, "charged", mongo_error, False),
        "lambda.killed_after_close": (session_store, "close_session", Killed, True),
        "lambda.killed_after_charge": (ledger, "record_usage", Killed, True),
    }


@pytest.mark.parametrize("step", [*leave_steps(), "eventbridge.put_events"])
def test_reconciling_a_lost_leave_survives_one_fault_at_any_step(
    org, lambda_context, event_tap: EventTap, monkeypatch, lost_leave, step
):
    faults = Faults(monkeypatch)
    faults.inject(step, leave_steps(), "participant.left")
    try:
        first = str(reconcile.participants())
    except Killed:
        first = "killed"
    sweep_later(lambda_context)  # the next sweeps: reconcile, outbox, pending charges
    sweep_later(lambda_context)
    counts = events_of(event_tap, [], "participant.left") | {
        "live charge": live_charges("s-1"),
        "session closed": db.collection(records.SESSIONS).count_documents(
            {"uid": "s-1", "leftAt": {"$ne": None}, "chargePending": {"$ne": True}}
        ),
    }
    record(faults, "rooms sweep: lost participant_left", step, "next sweep", first, counts)
