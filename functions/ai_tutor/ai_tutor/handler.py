"""The AI tutor's routes: chat (whole or streamed), the room's tutor settings, material, exchanges,
usage and summary, and the internal summary route.

Buffered routes use the Powertools resolver like every function; the streamed routes and the
classroom page's routes live in `ai_tutor.streaming` (an ASGI app) and this entry point hands their
events to it.
"""

# No `from __future__ import annotations` here: Powertools resolves each route's dependencies with
# typing.get_type_hints on every request, and string annotations are re-compiled each time.
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from verriflo import asgi
from verriflo.api import JSON, Envelope, Org, create_app, internal, lambda_handler, ok, protected, responses
from verriflo_ai import knowledge

from ai_tutor import answering, manage, models, steps, streaming

app = create_app(max_body_bytes=streaming.app.body_limit())
api = protected(app, streaming.GROUP)
service = internal(app)
TAGS = ["ai-tutor"]
ROOM = "/v1/ai-tutor/rooms/<room_id>"


@api.post(
    "/v1/ai-tutor/chat",
    summary="Ask the AI tutor during class (one JSON answer)",
    tags=TAGS,
    responses={200: {"description": "Success", "content": {JSON: {"model": models.TutorChatReply}}}}
    | responses(None, 400, 401, 402, 403, 404, 413, 429, 502, 503),
)
def chat(body: models.TutorChatRequest, org: Org) -> Response[models.TutorChatReply]:
    """A student's question (text or voice); the whole answer with its sources, as text and/or speech."""
    prepared = answering.prepare_chat(org.org_id, body, app.current_event.request_context.request_id)
    reply = models.TutorChatReply.of(answering.collect(prepared))
    return Response(status_code=200, content_type=JSON, body=reply.model_dump(mode="json", by_alias=True))


@api.get(
    "/v1/ai-tutor/summary/<room_id>",
    summary="The class summary and top questions",
    tags=TAGS,
    responses=responses(models.TutorSummary, 401, 404, 429, 502, 503)
    | {
        202: {
            "description": "Not written yet: `state` says why (class_in_progress or pending)",
            "content": {JSON: {"model": Envelope[models.TutorSummary]}},
        }
    },
)
def get_summary(room_id: str, org: Org) -> Response[Envelope[models.TutorSummary]]:
    """`summary` and `topQueries` once the class ended and its summary exists; before, 202 and the state."""
    summary, status = manage.summary(org.org_id, room_id)
    return ok(summary, status=status)


@api.get(
    "/v1/ai-tutor/usage/<room_id>",
    summary="AI tutor usage of a room",
    tags=TAGS,
    responses=responses(models.TutorRoomUsage, 401, 404, 429, 503),
)
def room_usage(room_id: str, org: Org) -> Envelope[models.TutorRoomUsage]:
    """Interactions, students, tokens and cost (credits) of the room's tutor."""
    return ok(manage.usage(org.org_id, room_id))


@api.get(
    "/v1/ai-tutor/settings",
    summary="The organisation's tutor defaults",
    tags=TAGS,
    responses=responses(models.TutorOrgSettings, 401, 429, 503),
)
def get_org_settings(org: Org) -> Envelope[models.TutorOrgSettings]:
    """What every room uses until its teacher changes it (default: on, `explain`, no topic)."""
    return ok(manage.get_org_settings(org.org_id))


@api.put(
    "/v1/ai-tutor/settings",
    summary="Set the organisation's tutor defaults",
    tags=TAGS,
    responses=responses(models.TutorOrgSettings, 400, 401, 403, 429, 503),
)
def put_org_settings(body: models.TutorUpdateRoomSettings, org: Org) -> Envelope[models.TutorOrgSettings]:
    """The same fields as a room's settings; a room's own settings win over these."""
    return ok(manage.update_org_settings(org.org_id, body))


@api.get(
    f"{ROOM}/settings",
    summary="The room's tutor settings",
    tags=TAGS,
    responses=responses(models.TutorRoomSettings, 401, 404, 429, 503),
)
def get_settings(room_id: str, org: Org) -> Envelope[models.TutorRoomSettings]:
    """Whether the tutor is on, its mode (hints or explain) and the class topic."""
    return ok(manage.get_settings(org.org_id, room_id))


@api.put(
    f"{ROOM}/settings",
    summary="Switch the tutor, choose its pedagogy",
    tags=TAGS,
    responses=responses(models.TutorRoomSettings, 400, 401, 404, 429, 503),
)
def put_settings(
    room_id: str, body: models.TutorUpdateRoomSettings, org: Org
) -> Envelope[models.TutorRoomSettings]:
    """Turn the tutor on or off, give hints step by step or explain fully, set the topic."""
    return ok(manage.update_settings(org.org_id, room_id, body))


@api.post(
    f"{ROOM}/material",
    summary="Add class material (notes or slides)",
    tags=TAGS,
    responses=responses(models.TutorMaterial, 400, 401, 404, 409, 413, 415, 429, 502, 503, status=201)
    | knowledge.queued_response(models.TutorMaterial, "GET …/material/{materialId}"),
)
def add_material(room_id: str, body: models.TutorAddMaterial, org: Org) -> Envelope[models.TutorMaterial]:
    """Text, Markdown or PDF, chunked and embedded: small material in the request (201, used at
    once), larger material through the ingestion queue (202, `processing`)."""
    material = manage.add_material(org.org_id, room_id, body)
    return ok(material, status=201 if material.status == "ready" else 202)


@api.get(
    f"{ROOM}/material/<material_id>",
    summary="Read class material (poll queued material)",
    tags=TAGS,
    responses=responses(models.TutorMaterial, 401, 404, 429, 503),
)
def get_material(room_id: str, material_id: str, org: Org) -> Envelope[models.TutorMaterial]:
    """One document of the room's material with its `status` (`processing`, `ready`, `failed`)."""
    return ok(manage.get_material(org.org_id, room_id, material_id))


@api.get(
    f"{ROOM}/material",
    summary="List class material",
    tags=TAGS,
    responses=responses(models.TutorMaterialList, 401, 404, 429, 503),
)
def list_material(room_id: str, org: Org) -> Envelope[models.TutorMaterialList]:
    """The room's material, newest first."""
    return ok(manage.list_material(org.org_id, room_id))


@api.delete(
    f"{ROOM}/material/<material_id>",
    summary="Remove class material",
    tags=TAGS,
    responses=responses(models.TutorMaterialDeleted, 401, 404, 429, 503),
)
def delete_material(room_id: str, material_id: str, org: Org) -> Envelope[models.TutorMaterialDeleted]:
    """Remove one document and its passages from the room's material."""
    manage.delete_material(org.org_id, room_id, material_id)
    return ok(models.TutorMaterialDeleted(material_id=material_id))


@api.get(
    f"{ROOM}/interactions",
    summary="Every exchange of the room",
    tags=TAGS,
    responses=responses(models.TutorExchangeList, 400, 401, 404, 429, 503),
)
def list_interactions(
    room_id: str,
    org: Org,
    student_uid: Annotated[str | None, Query(alias="studentUid", max_length=128)] = None,
    limit: Annotated[int | None, Query(ge=1, le=500)] = None,
    before: Annotated[str | None, Query(description="nextBefore of the previous page")] = None,
) -> Envelope[models.TutorExchangeList]:
    """Questions and answers, newest first (optionally one student's), a page at a time."""
    return ok(manage.exchanges(org.org_id, room_id, student_uid=student_uid, limit=limit, before=before))


@service.post(
    "/api/ai-tutor/summarize",
    summary="Internal: write a room's summary now",
    tags=["internal"],
    responses=responses(models.TutorSummary, 400, 403, 404, 502, 503),
)
def summarize(body: models.TutorSummarizeRequest) -> Envelope[models.TutorSummary]:
    """The ClassSummary steps at once (idempotent: a written summary is returned as it is)."""
    steps.run(body.org_id, body.room_id, manage.new_run_id())
    summary, _ = manage.summary(body.org_id, body.room_id)
    return ok(summary)


# Streamed (and, for the tutor, classroom) routes go to the ASGI app, the rest to Powertools.
handler = asgi.split_handler(lambda_handler(app), streaming.app)


def openapi_paths() -> dict[str, Any]:
    """OpenAPI paths of the ASGI app's routes (merged into the API's document by verriflo_tools.openapi)."""
    return streaming.openapi_document()
