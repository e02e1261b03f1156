"""Who is in a class and what they may do: the participant list (LiveKit's view, with the roles of
our session records), removing a participant, muting a track, changing a role or permissions."""

from __future__ import annotations

from verriflo.auth import OrgContext
from verriflo.errors import NotFound
from verriflo.orgs import now

from rooms import grant_store, lifecycle, lk, records, session_store
from rooms.models import (
    MuteTrack,
    ParticipantList,
    ParticipantRemoved,
    ParticipantView,
    Permissions,
    Track,
    UpdateParticipant,
)
from rooms.policy import Grants, effective_customization, grants_for, with_changes


def _view(person: lk.Person, role: str | None) -> ParticipantView:
    """A participant as LiveKit sees them, with the role from our session records (LiveKit's
    metadata is shown to, and could be written by, clients: never taken as a role)."""
    perm = person.permission
    return ParticipantView(
        uid=person.identity,
        name=person.name,
        role=role,
        state=person.state,
        joined_at=person.joined_at,
        tracks=[Track(sid=t.sid, source=t.source, type=t.type, muted=t.muted) for t in person.tracks],
        permissions=Permissions(
            can_publish=perm.can_publish,
            can_subscribe=perm.can_subscribe,
            can_publish_data=perm.can_publish_data,
            can_screen_share=perm.can_screen_share,
            hidden=perm.hidden,
        )
        if perm
        else None,
    )


def _connected(room: records.Room, uid: str) -> lk.Person | None:
    for info in lk.list_participants(room.lk_name):
        if info.identity == uid:
            return info
    return None


def _present(room: records.Room, uid: str) -> lk.Person:
    person = _connected(room, uid)
    if person is None:
        raise NotFound(f"No participant '{uid}' is connected to room '{room.room_id}'.")
    return person


def _session(org: OrgContext, room_id: str, uid: str) -> records.Session | None:
    return session_store.open_sessions(org.org_id, room_id, uid).get(uid)


def _role(session: records.Session | None) -> str | None:
    return session.role if session else None


def list_participants(org: OrgContext, room_id: str) -> ParticipantList:
    """Who is in the class now, as LiveKit sees it."""
    room = lifecycle.live_room(org, room_id)
    people = [p for p in lk.list_participants(room.lk_name) if p.is_standard]
    sessions = session_store.open_sessions(org.org_id, room_id) if people else {}
    return ParticipantList(
        room_id=room_id, participants=[_view(p, _role(sessions.get(p.identity))) for p in people]
    )


def remove_participant(org: OrgContext, room_id: str, uid: str) -> ParticipantRemoved:
    """Remove a participant: disconnect them if they are connected (their page posts
    `participant_removed`), and make the join tokens issued to them admit them no more, so one who
    holds a token and has not connected yet is removed too. Neither connected nor holding a token
    that admits them (never given one, or removed already): NotFound."""
    room = lifecycle.live_room(org, room_id)
    person = _connected(room, uid)
    if person is None and not grant_store.holds_grant(org.org_id, room_id, uid):
        raise NotFound(f"No participant '{uid}' is connected to or holds a join token for room '{room_id}'.")
    # Recorded first: should LiveKit fail, the tutor already refuses them, LiveKit's participant_joined
    # turns them away if they connect later (rooms.webhooks), and a retry is harmless.
    grant_store.mark_removed(org.org_id, room_id, uid, now(), person.sid if person else None)
    if person is not None:
        lk.remove_participant(room.lk_name, uid, gone_ok=True)  # or they left by themselves meanwhile
    return ParticipantRemoved(room_id=room_id, uid=uid, connected=person is not None)


def mute_track(org: OrgContext, room_id: str, uid: str, body: MuteTrack) -> ParticipantView:
    """Mute or unmute one of a participant's tracks."""
    room = lifecycle.live_room(org, room_id)
    info = _present(room, uid)
    if body.track_sid not in {t.sid for t in info.tracks}:
        raise NotFound(f"Participant '{uid}' publishes no track '{body.track_sid}'.")
    lk.mute_track(room.lk_name, uid, body.track_sid, body.muted)
    return _view(_present(room, uid), _role(_session(org, room_id, uid)))


def update_participant(org: OrgContext, room_id: str, uid: str, body: UpdateParticipant) -> ParticipantView:
    """Change a connected participant's role (and with it their grants) or single permissions.

    The role kept, when none is given, and the customization come from our session records (what our
    join token granted, or a role change since), and the participant's metadata is written afresh
    from them: nothing the participant's client could have written is read."""
    room = lifecycle.live_room(org, room_id)
    _present(room, uid)
    session = _session(org, room_id, uid)
    role = body.role or _role(session) or "STUDENT"
    customization = effective_customization(room.customization, session.customization if session else {})
    grants: Grants = grants_for(role, customization)
    if body.permissions is not None:
        grants = with_changes(grants, body.permissions.model_dump(by_alias=False))
    meta = {"role": role, "roomId": room_id, "title": room.title, "customization": customization}
    updated = lk.update_participant(room.lk_name, uid, grants=grants, metadata=meta, name=body.name)
    if body.role:
        session_store.set_session_role(org.org_id, room_id, uid, role)
        grant_store.set_role(org.org_id, room_id, uid, role)
    return _view(updated, role)
