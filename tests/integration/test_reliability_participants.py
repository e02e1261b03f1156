"""Participant webhooks LiveKit stopped retrying: the rooms sweep reconciles each live room with
LiveKit's list of participants (rooms.reconcile), announcing the missing `participant.joined` /
`participant.left` and billing the minutes once; a late webhook adds nothing; and it disconnects a
participant removed from the room whom LiveKit still lists, with no session. With the fault matrix
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
    a_recording_on_file,
    age_outbox,
    events_of,
    ledger_error,
    livekit_error,
    mongo_error,
    record,
    write_matrix,
)
from livekit_support import EventTap, LiveKit, deliver, rooms_event
from media_support import use_media_env
from rooms import grant_store, lifecycle, lk, reconcile, recording_store, records, session_store, store
from rooms import sweep as rooms_sweep
from rooms.config import live_settings
from rooms.handler import handler as rooms_handler
from support import call
from tutor_support import ROOM_ID, join, open_class
from verriflo import db, ledger, media, outbox
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


# --- a removed student LiveKit still lists --------------------------------------------------------


def listed(org, livekit: LiveKit) -> set[str]:
    rooms = livekit.stand_in.state()["rooms"]
    return {p["identity"] for r in rooms if r["name"] == f"{org.id}.{ROOM_ID}" for p in r["participants"]}


def remove(org, uid: str, lambda_context) -> Any:
    event = rooms_event("participant_remove", org.headers, room_id=ROOM_ID, uid=uid)
    return call(rooms_handler, event, lambda_context)


@pytest.fixture
def lost_turn_away(org, livekit: LiveKit, lambda_context, event_tap: EventTap):
    """s-2 is removed while only holding a token, then connects with it; LiveKit's participant_joined
    (which would disconnect them) never arrives."""
    open_class(org, livekit, lambda_context)
    token = join(org, lambda_context, ROOM_ID, "s-2", "STUDENT")
    assert remove(org, "s-2", lambda_context).data == {
        "roomId": ROOM_ID,
        "uid": "s-2",
        "removed": True,
        "connected": False,
    }
    livekit.join(f"{org.id}.{ROOM_ID}", token)
    livekit.wait_for("participant_joined")
    event_tap.drain()


def test_a_removed_student_whose_join_livekit_never_reported_is_disconnected_by_the_sweep(
    org, livekit: LiveKit, lambda_context, event_tap: EventTap, lost_turn_away
):
    assert "s-2" in listed(org, livekit)
    # at once, grace or not: nobody removed stays in class; and no session is opened for them
    assert reconcile.participants(at=later()) == {"joined": 0, "left": 0}
    assert "s-2" not in listed(org, livekit) and {"t-1", "s-1"} <= listed(org, livekit)
    livekit.pump(rooms_handler, lambda_context, "participant_left")
    assert sessions_of("s-2") == [] and live_charges("s-2") == 0
    assert [e for e in event_tap.drain() if e["data"].get("uid") == "s-2"] == []


def test_a_removal_whose_livekit_call_failed_is_completed_by_the_sweep(
    org, livekit: LiveKit, lambda_context, event_tap: EventTap, monkeypatch
):
    """The removal is recorded before LiveKit is asked: if that call fails and the org's server never
    retries, the sweep disconnects them; their stay before it is billed as usual."""
    open_class(org, livekit, lambda_context)

    def down(*_a: Any, **_k: Any) -> None:
        raise livekit_error()

    monkeypatch.setattr(lk, "remove_participant", down)
    assert remove(org, "s-1", lambda_context).status == 503
    monkeypatch.undo()
    assert "s-1" in listed(org, livekit)
    rooms_sweep.handler({}, lambda_context)
    assert "s-1" not in listed(org, livekit)
    livekit.pump(rooms_handler, lambda_context, "participant_left")
    [stay] = sessions_of("s-1")
    assert stay["leftAt"] is not None and live_charges("s-1") == 1


def test_a_stay_the_removal_was_to_end_is_kept_and_billed_by_the_sweep(
    org, livekit: LiveKit, lambda_context, event_tap: EventTap, monkeypatch, lost_join
):
    """s-2 is in class (LiveKit's participant_joined was lost), then removed, and the removal's own
    LiveKit call fails: the sweep disconnects them and, as the webhook would, keeps the stay that
    began before the removal: one session, one participant.joined/left, one charge."""

    def down(*_a: Any, **_k: Any) -> None:
        raise livekit_error()

    with monkeypatch.context() as patched:  # undo() would undo the fixtures' settings too
        patched.setattr(lk, "remove_participant", down)
        assert remove(org, "s-2", lambda_context).status == 503
    assert "s-2" in listed(org, livekit)
    assert reconcile.participants(at=later()) == {"joined": 1, "left": 0}
    assert "s-2" not in listed(org, livekit)
    livekit.pump(rooms_handler, lambda_context, "participant_left")
    assert reconcile.participants(at=later()) == {"joined": 0, "left": 0}
    [stay] = sessions_of("s-2")
    assert stay["openedBy"] == "sweep" and stay["leftAt"] is not None and live_charges("s-2") == 1
    seen: list[dict[str, Any]] = []
    counted = events_of(event_tap, seen, "participant.joined", "participant.left")
    assert counted == {"participant.joined": (1, 1), "participant.left": (1, 1)}


def turn_away_steps() -> dict[str, tuple[Any, str, Any, bool]]:
    return {
        "livekit.list_participants": (lk, "list_participants", livekit_error, False),
        "mongo.removals": (grant_store, "removals", mongo_error, False),
        "livekit.remove_participant": (lk, "remove_participant", livekit_error, False),
    }


@pytest.mark.parametrize("step", [*turn_away_steps()])
def test_disconnecting_a_removed_student_survives_one_fault_at_any_step(
    org, livekit: LiveKit, lambda_context, event_tap: EventTap, monkeypatch, lost_turn_away, step
):
    faults = Faults(monkeypatch)
    faults.inject(step, turn_away_steps(), "participant.joined")
    first = str(reconcile.participants(at=later()))  # this room waits for the next sweep
    reconcile.participants(at=later())  # the next sweep
    sweep_later(lambda_context)
    livekit.pump(rooms_handler, lambda_context, "participant_left")
    counts = {
        "disconnected": int("s-2" not in listed(org, livekit)),
        "no session": int(sessions_of("s-2") == []),
        "no event": int([e for e in event_tap.drain() if e["data"].get("uid") == "s-2"] == []),
    }
    record(faults, "rooms sweep: removed student still connected", step, "next sweep", first, counts)


# --- a lost room_finished --------------------------------------------------------------------------


def room_doc(org_id: str) -> dict[str, Any]:
    return db.collection(records.ROOMS).find_one({"orgId": org_id, "roomId": ROOM_ID})


def livekit_closes_the_room(org, livekit: LiveKit) -> list[Any]:
    """LiveKit closes the room by itself (as at its empty timeout); its webhooks are returned, not
    delivered: lost, unless a test delivers them late."""
    with livekit.stand_in._lock:
        livekit.stand_in._close(f"{org.id}.{ROOM_ID}", 0)
    return livekit.wait_for("participant_left", "participant_left", "room_finished")


def deliver_late(deliveries: list[Any], lambda_context: Any) -> None:
    for delivery in deliveries:
        assert deliver(rooms_handler, lambda_context, delivery).status == 200


def class_counts(org, tap: EventTap, seen: list[dict[str, Any]]) -> dict[str, Any]:
    """What ending the class implies, each wanted exactly once (per participant where it says so)."""
    seen.extend(tap.drain())
    room = room_doc(org.id)
    ended_at = room.get("endedAt")
    counts: dict[str, Any] = events_of(tap, seen, "room.finished") | {
        "room ended": int(room["status"] == "ended" and not outbox.pending(records.ROOMS, room["_id"])),
        # the recording's retention counts from the end of class
        "retention clock": 0
        if ended_at is None
        else db.collection(media.VIDEOS).count_documents(
            {"orgId": org.id, "roomId": ROOM_ID, "expiresAt": ended_at + lifecycle.retention()}
        ),
    }
    for uid in ("t-1", "s-1"):
        left = {e["id"] for e in seen if e["type"] == "participant.left" and e["data"]["uid"] == uid}
        counts[f"participant.left {uid}"] = len(left)
        counts[f"live charge {uid}"] = live_charges(uid)
        counts[f"session closed {uid}"] = db.collection(records.SESSIONS).count_documents(
            {"uid": uid, "leftAt": {"$ne": None}, "chargePending": {"$ne": True}}
        )
    return counts


@pytest.fixture
def lost_finish(org, livekit: LiveKit, lambda_context, event_tap: EventTap, monkeypatch):
    """A class of an hour (a sweep saw t-1 and s-1 connected, 15 minutes ago) with a recording on
    file; LiveKit then closes the room, and none of its webhooks arrive."""
    use_media_env(monkeypatch)
    open_class(org, livekit, lambda_context)
    rooms_sweep.handler({}, lambda_context)  # sees both connected
    an_hour_in_class("t-1")
    an_hour_in_class("s-1")
    room = room_doc(org.id)
    began = {
        "createdAt": room["createdAt"] - timedelta(minutes=76),
        "startedAt": room["startedAt"] - timedelta(minutes=75),
    }
    db.collection(records.ROOMS).update_one({"_id": room["_id"]}, {"$set": began})
    a_recording_on_file(org.id, ROOM_ID)
    lost = livekit_closes_the_room(org, livekit)
    event_tap.drain()
    return lost


def test_a_room_livekit_closed_without_a_room_finished_is_ended_once_by_the_sweep(
    org, lambda_context, event_tap: EventTap, lost_finish
):
    [seen_at] = {s["seenAt"] for s in sessions_of("t-1") + sessions_of("s-1")}
    done = rooms_sweep.handler({}, lambda_context)
    assert (done["left"], done["ended"]) == (2, 1)
    assert rooms_sweep.handler({}, lambda_context)["ended"] == 0
    room = room_doc(org.id)
    # ended by LiveKit, at the last sign of the class (LiveKit does not say when it closed the room)
    assert room["status"] == "ended" and room["endedAt"] == seen_at and room["ended"] == {"by": "livekit"}
    seen: list[dict[str, Any]] = []
    counts = class_counts(org, event_tap, seen)
    assert counts == {"room.finished": (1, 1)} | {k: 1 for k in counts if k != "room.finished"}, counts
    [finished] = [e for e in seen if e["type"] == "room.finished"]
    assert finished["data"] == {
        "roomId": ROOM_ID,
        "sid": room["sid"],
        "endedAt": seen_at.isoformat(),
        "reason": "livekit",
    }
    # LiveKit's very late deliveries: acknowledged; nothing ended, announced or charged twice
    deliver_late(lost_finish, lambda_context)
    assert class_counts(org, event_tap, seen) == counts
    assert room_doc(org.id)["endedAt"] == seen_at


def test_a_room_livekit_closed_only_moments_ago_is_left_to_livekits_own_room_finished(
    org, livekit: LiveKit, lambda_context, event_tap: EventTap
):
    open_class(org, livekit, lambda_context)
    deliveries = livekit_closes_the_room(org, livekit)
    assert rooms_sweep.handler({}, lambda_context)["ended"] == 0  # within the grace
    assert room_doc(org.id)["status"] == "open"
    deliver_late(deliveries, lambda_context)
    assert room_doc(org.id)["status"] == "ended"
    assert reconcile.rooms(at=later()) == 0
    assert events_of(event_tap, [], "room.finished")["room.finished"] == (1, 1)


def test_a_quiet_room_livekit_still_has_open_is_not_ended(org, livekit: LiveKit, lambda_context):
    open_class(org, livekit, lambda_context)
    for uid in ("t-1", "s-1"):
        livekit.leave(f"{org.id}.{ROOM_ID}", uid)
    livekit.pump(rooms_handler, lambda_context, "participant_left", "participant_left")
    # an hour on by the sweep's clock and nobody there, but LiveKit lists the room: the class goes on
    assert reconcile.rooms(at=later() + timedelta(hours=1)) == 0
    assert room_doc(org.id)["status"] == "open"


def test_livekit_unreachable_ends_no_room(org, lambda_context, monkeypatch, lost_finish):
    def down(names: list[str]) -> set[str]:
        raise livekit_error()

    monkeypatch.setattr(lk, "open_rooms", down)
    assert reconcile.rooms(at=later()) == 0
    assert room_doc(org.id)["status"] == "open"


def test_a_session_opened_while_the_sweep_weighs_a_gone_room_waits_for_the_next_sweep(
    org, lambda_context, event_tap: EventTap, monkeypatch, lost_finish
):
    real = session_store.sessions_of
    # the sweep read the room's sessions a moment before a late participant_joined opened s-1's
    monkeypatch.setattr(session_store, "sessions_of", lambda o, r: [s for s in real(o, r) if s.uid != "s-1"])
    assert reconcile.rooms() == 0
    assert room_doc(org.id)["status"] == "open"
    monkeypatch.setattr(session_store, "sessions_of", real)  # the next sweep
    assert reconcile.rooms() == 1
    counts = class_counts(org, event_tap, [])
    assert counts == {"room.finished": (1, 1)} | {k: 1 for k in counts if k != "room.finished"}, counts


def finish_steps() -> dict[str, tuple[Any, str, Any, bool]]:
    return {
        "livekit.list_rooms": (lk, "open_rooms", livekit_error, False),
        "mongo.sessions_of": (session_store, "sessions_of", mongo_error, False),
        "mongo.close_session": (session_store, "close_session", mongo_error, False),
        "ledger.record_usage": (ledger, "record_usage", ledger_error, False),
        "mongo.charged": (session_store, "charged", mongo_error, False),
        "mongo.end_room": (store, "end_room", mongo_error, False),
        "mongo.retention_clock": (recording_store, "schedule_recording_deletion", mongo_error, False),
        "mongo.outbox_mark_done": (outbox, "_done", mongo_error, False),
        "lambda.killed_after_close": (session_store, "close_session", Killed, True),
        "lambda.killed_after_charge": (ledger, "record_usage", Killed, True),
        "lambda.killed_after_end": (store, "end_room", Killed, True),
    }


@pytest.mark.parametrize("room_finished", ["before_the_next_sweep", "after_the_sweeps"])
@pytest.mark.parametrize("step", [*finish_steps(), "eventbridge.put_events"])
def test_ending_a_room_whose_room_finished_was_lost_survives_one_fault_at_any_step(
    org, lambda_context, event_tap: EventTap, monkeypatch, lost_finish, step, room_finished
):
    faults = Faults(monkeypatch)
    faults.inject(step, finish_steps(), "room.finished")
    try:
        # the rooms pass alone: its own closing and charging of the sessions is what fails
        first = str(reconcile.rooms())
    except Killed:
        first = "killed"
    if room_finished == "before_the_next_sweep":  # LiveKit's webhooks come late, not never
        deliver_late(lost_finish, lambda_context)
    for _ in range(2):  # the next scheduled sweeps, minutes later
        age_outbox(records.ROOMS, room_doc(org.id)["_id"])
        sweep_later(lambda_context)
    seen: list[dict[str, Any]] = []
    counts = class_counts(org, event_tap, seen)
    if room_finished == "after_the_sweeps":
        # the sweeps alone completed the end; LiveKit's deliveries, days late, add nothing
        deliver_late(lost_finish, lambda_context)
        assert class_counts(org, event_tap, seen) == counts
    record(
        faults,
        "rooms sweep: lost room_finished",
        step,
        f"next sweep; room_finished {room_finished}",
        first,
        counts,
    )
