"""Joining a class: starting it (create: the LiveKit room, then our record, and the creator's
join token) and joining it (a join token for a participant of a live room). Create talks to
LiveKit before writing anything, so an unreachable LiveKit leaves no half-created room behind.
Every token issued is recorded as the participant's grant (the AI tutor admits who holds one).
"""

from __future__ import annotations

from typing import Any

from verriflo.auth import OrgContext
from verriflo.errors import Conflict, ValidationFailed
from verriflo.orgs import now

from rooms import grant_store, lifecycle, lk, records, store
from rooms.config import live_settings
from rooms.models import CreateRoom, JoinInfo, JoinRoom, Participant, RoomCreated, RoomRef
from rooms.policy import effective_customization, grants_for


def _reused(room_id: str) -> ValidationFailed:
    message = (
        f"Invalid value for 'roomId': '{room_id}' was already used by this organisation "
        "and can never be reused."
    )
    return ValidationFailed(
        message,
        details={"fields": [{"field": "roomId", "message": "already used", "type": "room_id_reused"}]},
    )


def issue_token(
    room: records.Room, participant: Participant, given: dict[str, Any], default_role: str
) -> JoinInfo:
    """A join token for `participant` (their grants from role and customization), recorded as their grant."""
    role = participant.role or default_role
    customization = effective_customization(room.customization, given)
    grants = grants_for(role, customization)
    metadata = {
        "role": role,
        "roomId": room.room_id,
        "title": room.title,
        "customization": customization,
    }
    settings = live_settings()
    token, expires = lk.mint_token(
        identity=participant.uid,
        name=participant.name,
        room=room.lk_name,
        grants=grants,
        metadata=metadata,
        ttl_s=settings.join_token_ttl_s,
    )
    grant_store.record_grant(
        records.JoinGrant(
            org_id=room.org_id,
            room_id=room.room_id,
            uid=participant.uid,
            role=role,
            issued_at=now(),
            expires_at=expires,
        )
    )
    return JoinInfo(
        token=token,
        iframe_url=f"{settings.live_ui_url.rstrip('/')}/iframe/live?token={token}",
        expires_at=expires,
    )


def _require_class_credits(org: OrgContext, room_id: str) -> None:
    """A class may start only while the org holds the minimum credits (API.md) and its caps allow."""
    from verriflo import ledger, pricing

    ledger.require_credits(
        org.org_id, pricing.MIN_CREDITS_TO_START_CLASS, pricing.CLASS_START_MESSAGE, room_id=room_id
    )


def create_room(org: OrgContext, body: CreateRoom) -> RoomCreated:
    """Create the LiveKit room, then remember it; the creator gets a join token."""
    _require_class_credits(org, body.room_id)
    if store.find_room(org.org_id, body.room_id) is not None:
        raise _reused(body.room_id)
    name = lifecycle.livekit_name(org.org_id, body.room_id)
    customization = body.customization.given()
    sid = lk.create_room(
        name,
        empty_timeout=body.settings.empty_timeout,
        max_participants=body.settings.max_participants,
        metadata={"orgId": org.org_id, "roomId": body.room_id, "title": body.title},
    )
    room = records.Room(
        org_id=org.org_id,
        room_id=body.room_id,
        title=body.title,
        course_id=body.course_id,
        lk_name=name,
        sid=sid,
        customization=customization,
        settings=body.settings.model_dump(by_alias=True),
        created_by=body.participant.uid,
        created_at=now(),
    )
    try:
        room = store.insert_room(room)
    except Conflict as exc:
        # Lost a race with a concurrent create of the same roomId; the winner owns the LiveKit room.
        raise _reused(body.room_id) from exc
    joined = issue_token(room, body.participant, {}, "TEACHER")
    return RoomCreated(**joined.model_dump(), room=RoomRef(room_id=body.room_id, sid=sid))


def join_room(org: OrgContext, room_id: str, body: JoinRoom) -> JoinInfo:
    """A join token for a participant of a live room, whatever the org's balance (the 100-credit
    minimum guards starting a class: create), unless a spending cap is used up."""
    room = lifecycle.live_room(org, room_id)
    role = body.participant.role or "STUDENT"
    student = body.participant.uid if role == "STUDENT" else None
    # The class was started (and its 100 credits checked) by create: whoever joins it, at any time,
    # is never refused for a low balance (live usage may take it below zero, API.md); caps still hold.
    lifecycle.require_within_caps(org, room_id, student)
    return issue_token(room, body.participant, body.customization.given(), "STUDENT")
