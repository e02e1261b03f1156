"""Participants whose LiveKit webhook was lost for good (LiveKit stopped retrying): the rooms sweep
compares each live room's sessions with LiveKit's own list of who is connected.

- Connected in LiveKit for longer than `reconcile_grace_s`, with no session of ours: the session is
  opened (`openedBy: sweep`) and `participant.joined` recorded with it (verriflo.outbox).
- A session of ours whose participant LiveKit no longer lists, not seen for `reconcile_grace_s`: it
  is closed (`closedBy: sweep`) at the last time a sweep saw them connected (or their join: LiveKit
  does not say when they left, so their minutes end at the last sign of them, never later), charged
  once (the session's ledger entry id) and `participant.left` recorded with the close.

A late webhook for a session the sweep opened or closed publishes nothing more (rooms.webhooks), and
events the sweep records have ids of their own per session, so each is announced once.

- Connected in LiveKit though removed from the room (DELETE .../participants/{uid}, or a student from
  the classroom page; the webhook that turns them away was lost, or LiveKit failed the removal's own
  call): disconnected, and given no session, as the webhook turns them away. A connection the
  removal itself was to disconnect was in class before it: it is kept, and billed, as the webhook
  keeps it.

Rooms whose `room_finished` webhook was lost for good (`rooms`, after `participants` in the sweep):
a room we think is live that LiveKit no longer lists, with no sign of activity for
`reconcile_grace_s` (its creation or start, a session's join, leave or last sighting), is ended as
`room_finished` ends it. Its sessions still open are closed as lost leaves are (at their last sign,
charged once, `participant.left` announced once: LiveKit's participant_left webhooks were lost with
it), closed ones not yet charged are charged, then the room is ended with its end effects (retention
clock, `room.finished`, which starts the class summary) recorded in the same update
(verriflo.outbox). The end time is that last sign of activity (LiveKit does not say when it closed
the room; never later than what we saw), the same on every retry, so a sweep that dies part-way is
completed by the next one, and a late `room_finished` finds the room ended and adds nothing (the
room's end and `room.finished` are written once, the charges keyed by session).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from verriflo import outbox
from verriflo.errors import ServiceUnavailable
from verriflo.observability import logger
from verriflo.orgs import now

from rooms import grant_store, lifecycle, lk, records, session_store, store, webhooks
from rooms.config import live_settings


def participants(at: datetime | None = None) -> dict[str, int]:
    """Reconcile every live room with LiveKit; returns how many sessions were opened and closed."""
    at = at or now()
    cutoff = at - timedelta(seconds=live_settings().reconcile_grace_s)
    done = {"joined": 0, "left": 0}
    for room in store.live_rooms():
        try:
            joined, left = _room(room, at, cutoff)
        except ServiceUnavailable as exc:  # LiveKit or MongoDB: this room waits for the next sweep
            logger.warning("rooms.reconcile_failed", extra={"room_id": room.room_id, "error": exc.message})
            continue
        done["joined"] += joined
        done["left"] += left
    return done


def _room(room: records.Room, at: datetime, cutoff: datetime) -> tuple[int, int]:
    people = {p.sid: p for p in lk.list_participants(room.lk_name) if p.is_standard and p.sid}
    refused = _disconnect_removed(room, people)
    sessions = session_store.open_sessions_in(room.lk_name)
    prefix = f"{room.sid}:"
    session_store.seen([sid for sid in sessions if sid.removeprefix(prefix) in people], at)
    joined = sum(
        _joined(room, prefix + sid, person)
        for sid, person in people.items()
        if prefix + sid not in sessions
        and sid not in refused
        and person.joined_at is not None
        and person.joined_at <= cutoff
    )
    left = sum(
        _left(room, session, cutoff)
        for session_id, session in sessions.items()
        if session_id.removeprefix(prefix) not in people
    )
    # Effects a sweep recorded and did not finish (it died, or the bus failed) are drained by
    # session_store.sweep_session_effects in the sweep handler.
    store.reconciled(room, at)
    return joined, left


def _disconnect_removed(room: records.Room, people: dict[str, lk.Person]) -> set[str]:
    """Disconnect whoever LiveKit still lists though removed from the room (their participant_joined
    webhook, which turns them away, was lost, or the removal's own LiveKit call failed); returns
    the connections (participant sids) refused, which get no session from the sweep: all of a
    removed participant's but those the removal itself was to disconnect (rooms.webhooks, the same
    rule)."""
    removed = grant_store.removals(room.org_id, room.room_id) if people else {}
    refused = set()
    for sid, person in people.items():
        removal = removed.get(person.identity)
        if removal is None:
            continue
        lk.remove_participant(room.lk_name, person.identity, gone_ok=True)
        logger.info("rooms.reconciled_removal", extra={"room_id": room.room_id, "uid": person.identity})
        if sid not in removal.connections:
            refused.add(sid)
    return refused


def _joined(room: records.Room, session_id: str, person: lk.Person) -> int:
    if session_store.get_session(session_id) is not None:
        return 0  # closed already (a participant who rejoins gets a new sid)
    joined_at = person.joined_at or now()
    session = webhooks.new_session(room, session_id, person, joined_at, opened_by="sweep")
    event = outbox.event(
        "participant.joined",
        room.org_id,
        {
            "roomId": room.room_id,
            "uid": person.identity,
            "name": person.name,
            "role": session.role,
            "joinedAt": joined_at.isoformat(),
        },
        event_id=f"sweep.joined.{session_id}",
    )
    # The session and its participant.joined are recorded in one insert (verriflo.outbox).
    if not session_store.open_session(session, effects=[event]):
        return 0  # a late webhook opened it meanwhile (and announced it)
    logger.info("rooms.reconciled_join", extra={"session_id": session_id})
    session_store.carry_out_session_effects(session_id)
    return 1


def _left(room: records.Room, session: records.Session, cutoff: datetime) -> int:
    last = session.seen_at or session.joined_at
    if last > cutoff:
        return 0  # gone only a moment ago: LiveKit's own webhook may still be on its way
    seconds = max(0.0, (last - session.joined_at).total_seconds())
    event = outbox.event(
        "participant.left",
        room.org_id,
        {"roomId": room.room_id, "uid": session.uid, "seconds": seconds},
        event_id=f"sweep.left.{session.id}",
    )
    closed = session_store.close_session(session.id, last, closed_by="sweep", effects=[event])
    if closed is None:
        return 0  # a late webhook closed it meanwhile (and announced it)
    logger.info("rooms.reconciled_leave", extra={"session_id": session.id})
    webhooks._meter(room, session.id, last)  # the charge, once (a failure: settle_charges retries)
    session_store.carry_out_session_effects(session.id)
    return 1


def rooms(at: datetime | None = None) -> int:
    """End every live room LiveKit no longer lists, quiet for the grace; returns how many were ended."""
    at = at or now()
    cutoff = at - timedelta(seconds=live_settings().reconcile_grace_s)
    live = store.live_rooms()
    try:
        listed = lk.open_rooms([room.lk_name for room in live])
    except ServiceUnavailable as exc:  # LiveKit unreachable: no room is taken for gone
        logger.warning("rooms.reconcile_failed", extra={"error": exc.message})
        return 0
    ended = 0
    for room in live:
        if room.lk_name in listed:
            continue
        try:
            ended += _gone(room, cutoff)
        except ServiceUnavailable as exc:  # this room waits for the next sweep; the others go on
            logger.warning("rooms.reconcile_failed", extra={"room_id": room.room_id, "error": exc.message})
    return ended


def _gone(room: records.Room, cutoff: datetime) -> int:
    sessions = {s.id: s for s in session_store.sessions_of(room.org_id, room.room_id)}
    signs = [room.created_at, room.started_at]
    for s in sessions.values():
        signs += [s.joined_at, s.seen_at, s.left_at]
    last = max(sign for sign in signs if sign is not None)
    if last > cutoff:
        return 0  # closed only a moment ago: LiveKit's own room_finished may still be on its way
    # As room_finished does: every session still open or not yet charged first, then the room's end.
    # LiveKit's participant_left webhooks were lost with it: a session still open is closed as a lost
    # leave is (at its last sign, participant.left announced once).
    for session_id in session_store.unsettled_session_ids(room.lk_name):
        session = sessions.get(session_id)
        if session is None:
            return 0  # opened since we looked (a late webhook): the next sweep weighs it too
        if session.left_at is None:
            _left(room, session, cutoff)
        else:  # closed, its charge not recorded yet
            webhooks._meter(room, session_id, session.left_at)
    ending = records.Ending(by="livekit")
    effects = lifecycle.end_effects(room, last, "livekit")
    ended = store.end_room(room.org_id, room.room_id, last, effects, ending)
    if ended is not None:
        logger.info("rooms.reconciled_end", extra={"room_id": room.room_id, "org_id": room.org_id})
    # Whoever ended it (this sweep, or a late room_finished a moment ago), what is pending is done here.
    store.carry_out_effects(room)
    return 0 if ended is None else 1
