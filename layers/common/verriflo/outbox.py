"""Side effects recorded with the state change that implies them, then carried out until done.

A transactional outbox kept inside the entity's own MongoDB document: the conditional update that
changes a room's or a video's state (`status: ended`, `completed`, `failed`) also pushes the effects
that change implies onto the document's `pendingEffects` array. One document, one update: atomic
without a multi-document transaction (the MongoDB-wire server has them, but slowly). The state
change and its effects are recorded together or not at all.

`drain(collection, key)` then carries out each pending effect in order and `$pull`s it once done.
Every path that may follow an interrupted attempt drains: the retry of the same request or
delivery, the other path to the same state (LiveKit's `room_finished` on a room the API ended, the
S3 retry of a completed video, the chunked path's join or Catch), and a scheduled `sweep` for what
nobody came back for. An effect is marked done after it ran, so one interrupted between the two
runs again on the next drain. Each kind is safe to repeat, which makes its outcome exactly once:

- `event`: a domain event built when the state changed, with a deterministic id; published again it
  is the same event, which consumers drop by id (webhook deliveries are keyed by endpoint and event
  id, the class summary by room). The bus itself may carry a second copy: EventBridge is at least
  once anyway.
- `charge`: a ledger debit with a deterministic entry id; `ledger.record_usage` records an entry id
  once.
- `call`: an idempotent write registered by name (`register`) by the function package that owns it,
  e.g. starting a room's recording-retention clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from verriflo import db
from verriflo.errors import ServiceUnavailable
from verriflo.observability import logger
from verriflo.orgs import now

if TYPE_CHECKING:
    from pymongo import IndexModel

    from verriflo.ledger import UsageEvent

FIELD, SINCE = "pendingEffects", "effectsPendingSince"
_CALLS: dict[str, Callable[..., Any]] = {}


def indexes() -> list[IndexModel]:
    """The sweep's index; a collection that keeps an outbox registers it (`db.register_indexes`)."""
    from pymongo import ASCENDING, IndexModel

    return [IndexModel([(SINCE, ASCENDING)], sparse=True)]


def register(name: str, fn: Callable[..., Any]) -> None:
    """Make an idempotent write available as a `call` effect (keyword arguments, BSON values)."""
    _CALLS[name] = fn


def event(name: str, org_id: str, data: dict[str, Any], *, event_id: str) -> dict[str, Any]:
    """A domain event to publish, built now (its id must be deterministic: a redo is the same event)."""
    from verriflo import events

    return {
        "id": f"event:{event_id}",
        "kind": "event",
        "event": events.build(name, org_id, data, event_id=event_id),
    }


def charge(usage: UsageEvent) -> dict[str, Any]:
    """A ledger debit (its entry id must be deterministic: the ledger records an id once)."""
    return {"id": f"charge:{usage.entry_id}", "kind": "charge", "usage": usage.model_dump(mode="json")}


def call(name: str, **args: Any) -> dict[str, Any]:
    """A registered idempotent write, with its arguments."""
    return {"id": f"call:{name}", "kind": "call", "name": name, "args": args}


def with_effects(update: dict[str, Any], effects: list[dict[str, Any]]) -> dict[str, Any]:
    """`update` (a MongoDB update document) that also records `effects` as pending."""
    if not effects:
        return update
    merged = dict(update)
    merged["$push"] = {**update.get("$push", {}), FIELD: {"$each": effects}}
    merged["$set"] = {**update.get("$set", {}), SINCE: now()}
    return merged


def _run(effect: dict[str, Any]) -> None:
    kind = effect["kind"]
    if kind == "event":
        from verriflo import events

        events.publish_many([effect["event"]])
    elif kind == "charge":
        # Imported here: the ledger's models cost a cold start only where a charge is carried out.
        from verriflo import ledger

        ledger.record_usage(ledger.UsageEvent.model_validate(effect["usage"]))
    elif kind == "call":
        fn = _CALLS.get(effect["name"])
        if fn is None:
            raise LookupError(f"no outbox call named {effect['name']!r} in this function")
        fn(**effect["args"])
    else:
        raise LookupError(f"unknown outbox effect kind {kind!r}")


def _done(collection: str, key: Any, effect_id: str) -> None:
    with db.unavailable_on_failure():
        db.collection(collection).update_one({"_id": key}, {"$pull": {FIELD: {"id": effect_id}}})


def pending(collection: str, key: Any) -> list[dict[str, Any]]:
    """The effects still to carry out for one document."""
    with db.unavailable_on_failure():
        doc = db.collection(collection).find_one({"_id": key}, {FIELD: 1})
    return list((doc or {}).get(FIELD) or [])


def drain(collection: str, key: Any) -> int:
    """Carry out the document's pending effects in order, each marked done after it ran; returns how
    many. The first failure stops the drain and is raised (the rest stay pending for a retry)."""
    effects = pending(collection, key)
    for effect in effects:
        _run(effect)
        _done(collection, key, effect["id"])
        logger.info("outbox.effect_done", extra={"effect": effect["id"]})
    if effects:
        with db.unavailable_on_failure():
            db.collection(collection).update_one({"_id": key, FIELD: {"$size": 0}}, {"$unset": {SINCE: ""}})
    return len(effects)


def sweep(collection: str, *, older_than_s: float = 60, limit: int = 100) -> int:
    """Drain documents whose effects have been pending longer than `older_than_s` (their own attempt
    died or gave up); returns how many effects were carried out. A document that fails again is
    logged and left for the next sweep."""
    cutoff = now() - timedelta(seconds=older_than_s)
    with db.unavailable_on_failure():
        keys = [
            d["_id"]
            for d in db.collection(collection).find({SINCE: {"$lte": cutoff}}, {"_id": 1}).limit(limit)
        ]
    done = 0
    for key in keys:
        try:
            done += drain(collection, key)
        except (ServiceUnavailable, LookupError) as exc:
            logger.warning("outbox.sweep_failed", extra={"collection": collection, "error": str(exc)[:300]})
    return done
