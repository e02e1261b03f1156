"""What teachers and the org's server manage: per-room tutor settings, class material, the
exchanges, usage and the summary of a room. Every function is scoped by org: another org's roomId
is NotFound, never its data."""

from __future__ import annotations

import uuid
from datetime import datetime

from verriflo.errors import Forbidden, UpstreamError, ValidationFailed
from verriflo.ledger import from_milli
from verriflo.orgs import now
from verriflo_ai import knowledge

from ai_tutor import context, store
from ai_tutor.config import tutor_settings
from ai_tutor.credentials import RoomCredential
from ai_tutor.models import (
    TutorAddMaterial,
    TutorClassroomState,
    TutorExchange,
    TutorExchangeList,
    TutorMaterial,
    TutorMaterialList,
    TutorOrgSettings,
    TutorRoomSettings,
    TutorRoomUsage,
    TutorSummary,
    TutorUpdateRoomSettings,
)

# --- settings ---------------------------------------------------------------------------------------


def get_settings(org_id: str, room_id: str) -> TutorRoomSettings:
    """The room's tutor settings."""
    store.require_room(org_id, room_id)
    return context.room_settings(org_id, room_id)


def _changes(body: TutorUpdateRoomSettings) -> dict:
    clear_topic = "topic" in body.model_fields_set and body.topic is None
    if body.enabled is None and body.mode is None and body.topic is None and not clear_topic:
        raise ValidationFailed("Give at least one of enabled, mode or topic.")
    return {"enabled": body.enabled, "mode": body.mode, "topic": body.topic, "clear_topic": clear_topic}


def update_settings(org_id: str, room_id: str, body: TutorUpdateRoomSettings) -> TutorRoomSettings:
    """Switch the tutor on or off, choose hints or full explanations, set the class topic."""
    store.require_room(org_id, room_id)
    store.update_room_settings(org_id, room_id, now(), **_changes(body))
    return context.room_settings(org_id, room_id)


def get_org_settings(org_id: str) -> TutorOrgSettings:
    """The org's tutor defaults."""
    return context.org_settings(org_id)


def update_org_settings(org_id: str, body: TutorUpdateRoomSettings) -> TutorOrgSettings:
    """Change the defaults every room uses for what its teacher did not set."""
    store.update_org_settings(org_id, now(), **_changes(body))
    return context.org_settings(org_id)


# --- material ---------------------------------------------------------------------------------------


def _room_base(org_id: str, room_id: str, title: str) -> str:
    """The room's knowledge base, created on first use (a concurrent first use keeps one of the two)."""
    existing = store.room_settings(org_id, room_id).kb_id
    if existing:
        return existing
    created = knowledge.create_base(
        org_id, f"Class material: {title}"[:100], f"AI tutor material of room {room_id}"
    )
    kept = store.claim_knowledge_base(org_id, room_id, created.knowledge_base_id)
    if kept != created.knowledge_base_id:
        knowledge.delete_base(org_id, created.knowledge_base_id)
    return kept


def _material(room_id: str, doc: knowledge.Document, kinds: dict[str, str]) -> TutorMaterial:
    return TutorMaterial(
        material_id=doc.document_id,
        room_id=room_id,
        title=doc.title,
        kind=kinds.get(doc.document_id, "notes"),
        content_type=doc.content_type,  # type: ignore[arg-type]
        size_bytes=doc.size_bytes,
        chunk_count=doc.chunk_count,
        status=doc.status,
        embedded_chunks=doc.embedded_chunks,
        error=doc.error,
        created_at=doc.created_at,
    )


def add_material(org_id: str, room_id: str, body: TutorAddMaterial) -> TutorMaterial:
    """Extract, chunk and embed notes or slides (text or PDF) into the room's material."""
    room = store.require_room(org_id, room_id)
    # every rejection before any base is created or model is run
    content = body.content_bytes()
    kb_id = _room_base(org_id, room_id, room.title or room_id)
    doc = knowledge.add_document(org_id, kb_id, body.title, content, body.content_type)
    store.set_material_kind(org_id, room_id, doc.document_id, body.kind)
    return _material(room_id, doc, {doc.document_id: body.kind})


def list_material(org_id: str, room_id: str) -> TutorMaterialList:
    """The room's material, newest first."""
    store.require_room(org_id, room_id)
    settings = store.room_settings(org_id, room_id)
    if not settings.kb_id:
        return TutorMaterialList(room_id=room_id, material=[])
    docs = knowledge.list_documents(org_id, settings.kb_id).documents
    kinds = settings.material_kinds
    return TutorMaterialList(room_id=room_id, material=[_material(room_id, d, kinds) for d in docs])


def get_material(org_id: str, room_id: str, material_id: str) -> TutorMaterial:
    """One document of the room's material, with its status (poll material that was queued)."""
    from verriflo.errors import NotFound

    store.require_room(org_id, room_id)
    settings = store.room_settings(org_id, room_id)
    if not settings.kb_id:
        raise NotFound(f"Material '{material_id}' was not found.")
    doc = knowledge.get_document(org_id, settings.kb_id, material_id)
    return _material(room_id, doc, settings.material_kinds)


def delete_material(org_id: str, room_id: str, material_id: str) -> None:
    """Remove one document from the room's material."""
    from verriflo.errors import NotFound

    store.require_room(org_id, room_id)
    kb_id = store.room_settings(org_id, room_id).kb_id
    if not kb_id:
        raise NotFound(f"Material '{material_id}' was not found.")
    knowledge.delete_document(org_id, kb_id, material_id)


# --- exchanges, usage, summary ----------------------------------------------------------------------


def _exchange(row: store.Interaction) -> TutorExchange:
    return TutorExchange(
        interaction_id=row.id,
        student_uid=row.student_uid,
        question=row.question,
        answer=row.answer,
        status=row.status,
        mode=row.mode,
        sources=row.sources,
        error=row.error,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        created_at=row.created_at,
    )


def exchanges(
    org_id: str,
    room_id: str,
    *,
    student_uid: str | None = None,
    limit: int | None = None,
    before: str | None = None,
) -> TutorExchangeList:
    """The room's exchanges, newest first, a page at a time."""
    store.require_room(org_id, room_id)
    settings = tutor_settings()
    size = min(max(limit or settings.list_limit, 1), settings.list_limit)
    cursor = None
    if before:
        try:
            cursor = datetime.fromisoformat(before.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValidationFailed(
                "before must be an ISO 8601 time (nextBefore of the previous page)."
            ) from exc
    rows = store.interactions(org_id, room_id, student_uid=student_uid, limit=size, before=cursor)
    return TutorExchangeList(
        room_id=room_id,
        exchanges=[_exchange(r) for r in rows],
        next_before=rows[-1].created_at if len(rows) == size else None,
    )


def usage(org_id: str, room_id: str) -> TutorRoomUsage:
    """Interactions, students, tokens and the credits charged for the room's tutor."""
    store.require_room(org_id, room_id)
    totals = store.room_usage(org_id, room_id)
    return TutorRoomUsage(
        room_id=room_id,
        interactions=totals.interactions,
        completed_interactions=totals.interactions - totals.failed,
        failed_interactions=totals.failed,
        students=totals.students,
        input_tokens=totals.input_tokens,
        output_tokens=totals.output_tokens,
        total_tokens=totals.input_tokens + totals.output_tokens,
        cost=from_milli(totals.credits_milli),
    )


def summary(org_id: str, room_id: str) -> tuple[TutorSummary, int]:
    """The class summary and the status to answer with: 200 ready, 202 not yet (with the state)."""
    room = store.require_room(org_id, room_id)
    record = store.get_summary(org_id, room_id)
    if record is not None and record.status == "ready":
        return TutorSummary(
            room_id=room_id,
            state="ready",
            summary=record.summary,
            top_queries=record.top_queries,
            method=record.method,
            interactions=record.interactions,
            students=record.students,
            created_at=record.created_at,
        ), 200
    if record is not None and record.status == "failed":
        raise UpstreamError(
            "The summary of this class could not be produced; it can be run again "
            "(POST /api/ai-tutor/summarize)."
        )
    if not room.ended:
        return TutorSummary(
            room_id=room_id,
            state="class_in_progress",
            message="The class is still running; its summary is written when it ends.",
        ), 202
    return TutorSummary(
        room_id=room_id,
        state="pending",
        message="The class has ended and its summary is being written; try again shortly.",
    ), 202


# --- the classroom page -----------------------------------------------------------------------------


def classroom_state(credential: RoomCredential) -> TutorClassroomState:
    """The panel's view: the switch and mode, every exchange for teachers, one's own for students."""
    room = store.require_room(credential.org_id, credential.room_id)
    settings = context.room_settings(credential.org_id, credential.room_id)
    mine = None if credential.teaching else credential.uid
    page = exchanges(credential.org_id, credential.room_id, student_uid=mine, limit=50)
    return TutorClassroomState(
        room_id=credential.room_id,
        title=room.title or credential.room_id,
        role=credential.role,
        enabled=settings.enabled,
        mode=settings.mode,
        exchanges=page.exchanges,
    )


def classroom_settings(credential: RoomCredential, body: TutorUpdateRoomSettings) -> TutorRoomSettings:
    """The teacher's switch and mode, from the classroom page."""
    if not credential.teaching:
        raise Forbidden("Only the room's teachers may change the tutor's settings.")
    room = store.require_room(credential.org_id, credential.room_id)
    if room.ended:
        raise Forbidden(f"The class in room '{credential.room_id}' has ended.")
    return update_settings(credential.org_id, credential.room_id, body)


def new_run_id() -> str:
    """An id for one summary run started outside Step Functions."""
    return f"run_{uuid.uuid4().hex}"
