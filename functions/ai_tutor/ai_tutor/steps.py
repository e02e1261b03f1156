"""The `ClassSummary` state machine's Lambda steps (and the same work run at once for the internal
route): gather → summarize → publish, with a failure step the state machine's Catch calls.

`room.finished` starts the machine with the whole EventBridge event (LocalStack starts nothing with
`InputPath`); its first state reads `$.detail`. Steps pass only ids between them: a class of
thousands of exchanges would not fit in a Step Functions payload, so each step reads MongoDB.
Idempotent: one summary record per room, claimed by the run; a second run finds it ready and stops.
"""

from __future__ import annotations

from typing import Any

from verriflo import outbox
from verriflo.errors import ValidationFailed
from verriflo.observability import logger
from verriflo.orgs import now
from verriflo_ai import kb_store

from ai_tutor import context, store, summary


def _ids(event: dict[str, Any]) -> tuple[str, str, str]:
    try:
        return str(event["orgId"]), str(event["roomId"]), str(event.get("runId") or "")
    except KeyError as exc:
        raise ValidationFailed("A summary step needs orgId and roomId.") from exc


def gather(event: dict[str, Any]) -> dict[str, Any]:
    """Claim the room's summary for this run; `skip` when it is already written."""
    org_id, room_id, run_id = _ids(event)
    store.require_room(org_id, room_id)
    record = store.claim_summary(org_id, room_id, run_id, now())
    skip = record.status == "ready" or record.run_id != run_id
    if record.status == "ready":
        store.drain_summary(org_id, room_id)  # what an earlier run stored but never announced
    logger.info("tutor.summary_gathered", extra={"room_id": room_id, "skip": skip})
    return {"orgId": org_id, "roomId": room_id, "runId": run_id, "skip": skip}


def _material(org_id: str, room_id: str) -> list[str]:
    kb_id = store.room_settings(org_id, room_id).kb_id
    if not kb_id:
        return []
    return [row.text for row in kb_store.iter_chunks(org_id, kb_id)]


def summarize(event: dict[str, Any]) -> dict[str, Any]:
    """Write the summary and top questions of the class and store them (if the run still owns them)."""
    org_id, room_id, run_id = _ids(event)
    room = store.require_room(org_id, room_id)
    settings = context.room_settings(org_id, room_id)
    rows = list(store.iter_completed(org_id, room_id))
    from verriflo_ai import video_search

    # The class recording's transcript, when it is already there (it usually follows the class: the
    # summary's `taught` is read again whenever the summary is).
    taught = [m.text for m in video_search.key_moments(org_id, room_id)]
    content = summary.write(room.title or room_id, settings.topic, rows, _material(org_id, room_id), taught)
    ready = outbox.event(
        "summary.ready",
        org_id,
        {
            "roomId": room_id,
            "interactions": content.interactions,
            "topQueries": len(content.top_queries),
            "method": content.method,
        },
        event_id=_event_id(org_id, room_id),
    )
    stored = store.complete_summary(org_id, room_id, run_id, content, now(), [ready])
    # This run's earlier attempt may have stored it and died (Step Functions retried the step):
    # what it left pending is still this run's to announce.
    stored = stored or store.summary_pending(org_id, room_id)
    logger.info(
        "tutor.summary_written",
        extra={"room_id": room_id, "interactions": len(rows), "method": content.method, "stored": stored},
    )
    return {
        "orgId": org_id,
        "roomId": room_id,
        "runId": run_id,
        "stored": stored,
        "interactions": len(rows),
        "topQueries": len(content.top_queries),
    }


def _event_id(org_id: str, room_id: str) -> str:
    # Per room, so a repeated publish is one webhook delivery.
    return f"summary.ready.{org_id}.{room_id}"


def publish(event: dict[str, Any]) -> dict[str, Any]:
    """Publish `summary.ready`, recorded with the summary when it was stored (verriflo.outbox)."""
    org_id, room_id, _ = _ids(event)
    store.drain_summary(org_id, room_id)
    event_id = _event_id(org_id, room_id)
    store.mark_published(org_id, room_id, event_id, now())
    return {"orgId": org_id, "roomId": room_id, "published": event_id}


def fail(event: dict[str, Any]) -> dict[str, Any]:
    """Record the failure the state machine caught (error name and cause), then let it end failed."""
    org_id, room_id, _ = _ids(event)
    error = event.get("error") or {}
    store.fail_summary(
        org_id, room_id, str(error.get("Error") or "Unknown"), str(error.get("Cause") or ""), now()
    )
    logger.error("tutor.summary_failed", extra={"room_id": room_id, "error": error.get("Error")})
    return {"orgId": org_id, "roomId": room_id, "failed": True}


STEPS = {"gather": gather, "summarize": summarize, "publish": publish, "fail": fail}


def run(org_id: str, room_id: str, run_id: str) -> dict[str, Any]:
    """All the steps at once (the internal route): the same idempotent work, without Step Functions."""
    state = gather({"orgId": org_id, "roomId": room_id, "runId": run_id})
    if state["skip"]:
        return state
    try:
        done = summarize(state)
    except Exception as exc:  # noqa: BLE001 - recorded like the state machine's Catch, then re-raised
        fail(state | {"error": {"Error": type(exc).__name__, "Cause": str(exc)[:500]}})
        raise
    if done["stored"]:
        publish(state)
    return done


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point of every step: `{"step": name, ...ids}`."""
    step = STEPS.get(str(event.get("step")))
    if step is None:
        raise ValidationFailed("Unknown summary step.")
    return step(event)
