"""The fault-injection matrix's tools: make one external call fail once (or the invocation die right
after it), count what came out, and write the table (tests/artifacts/fault_matrix.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from livekit_support import EventTap, deliver
from media_support import RECORDINGS
from rooms import hook_store, records
from rooms.handler import handler as rooms_handler
from support import ROOT
from verriflo import aws, db, media, outbox
from verriflo.errors import ServiceUnavailable

MATRIX: list[dict[str, Any]] = []


class Killed(BaseException):
    """The Lambda runtime ending an invocation (timeout, out of memory): nothing after it runs."""


def mongo_error() -> BaseException:
    """What a store call raises when MongoDB drops the connection (AutoReconnect, turned into 503)."""
    from pymongo.errors import AutoReconnect

    try:
        with db.unavailable_on_failure():
            raise AutoReconnect("injected: connection reset by peer")
    except ServiceUnavailable as exc:
        return exc
    raise AssertionError("unreachable")


def ledger_error() -> BaseException:
    return ServiceUnavailable("The ledger is busy; retry shortly.")


def livekit_error() -> BaseException:
    return ServiceUnavailable("LiveKit is unavailable; retry shortly.")


class Faults:
    """Makes one call fail once (before it runs), or kills the invocation right after it ran."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.fired = 0

    def once(self, owner: Any, name: str, error: Callable[[], BaseException], *, after: bool = False) -> None:
        real = getattr(owner, name)

        def faulty(*args: Any, **kwargs: Any) -> Any:
            if self.fired:
                return real(*args, **kwargs)
            self.fired += 1
            if after:
                real(*args, **kwargs)
            raise error()

        self.monkeypatch.setattr(owner, name, faulty)

    def bus_once(self, event: str) -> None:
        """EventBridge's PutEvents answers an error once, for the first batch carrying `event`."""
        client = aws.client("events")
        real = client.put_events

        def faulty(**kwargs: Any) -> Any:
            if not self.fired and any(e["DetailType"] == event for e in kwargs["Entries"]):
                self.fired += 1
                raise ClientError({"Error": {"Code": "InternalFailure", "Message": "injected"}}, "PutEvents")
            return real(**kwargs)

        self.monkeypatch.setattr(client, "put_events", faulty)

    def inject(
        self, step: str, table: dict[str, tuple[Any, str, Callable[[], BaseException], bool]], event: str
    ) -> None:
        """Arm the fault of `step`: a row of `table`, or EventBridge failing to take `event`."""
        if step == "eventbridge.put_events":
            self.bus_once(event)
            return
        owner, name, error, after = table[step]
        self.once(owner, name, error, after=after)


def events_of(tap: EventTap, seen: list[dict[str, Any]], *names: str) -> dict[str, tuple[int, int]]:
    """(distinct ids, copies on the bus) of each event name published so far."""
    seen.extend(tap.drain())
    return {
        n: (len({e["id"] for e in seen if e["type"] == n}), len([e for e in seen if e["type"] == n]))
        for n in names
    }


def record(
    faults: Faults, consumer: str, step: str, recovery: str, first: str, counts: dict[str, Any]
) -> None:
    """A row of the matrix; lost and duplicated are counted over every effect of the row."""
    assert faults.fired == 1, "the fault never fired"
    lost = sum(max(0, 1 - (v[0] if isinstance(v, tuple) else v)) for v in counts.values())
    dup = sum(max(0, (v[0] if isinstance(v, tuple) else v) - 1) for v in counts.values())
    MATRIX.append(
        {
            "consumer": consumer,
            "step": step,
            "recovery": recovery,
            "first": first,
            "counts": counts,
            "lost": lost,
            "duplicated": dup,
        }
    )
    assert (lost, dup) == (0, 0), counts


def write_matrix() -> None:
    """Write the rows recorded so far to tests/artifacts/fault_matrix.md (rows of other runs kept)."""
    if not MATRIX:
        return
    lines = [
        "| consumer | failing step | recovery (first, then the rest) | first reply "
        "| counts: distinct (bus copies) | lost | duplicated |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in MATRIX:
        shown = ", ".join(
            f"{k} {v[0]} ({v[1]})" if isinstance(v, tuple) else f"{k} {v}" for k, v in row["counts"].items()
        )
        lines.append(
            f"| {row['consumer']} | {row['step']} | {row['recovery']} | {row['first']} | {shown} | "
            f"{row['lost']} | {row['duplicated']} |"
        )
    out = ROOT / "tests" / "artifacts" / "fault_matrix.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = out.read_text().splitlines()[2:] if out.exists() else []
    kept = [line for line in previous if line not in lines]
    out.write_text("\n".join(lines[:2] + kept + lines[2:]) + "\n")


def age_outbox(collection: str, key: Any) -> None:
    """Move a document's pending effects a while into the past, as a sweep some minutes later sees them."""
    coll = db.collection(collection)
    doc = coll.find_one({"_id": key}, {outbox.SINCE: 1}) or {}
    if outbox.SINCE in doc:
        coll.update_one({"_id": key}, {"$set": {outbox.SINCE: doc[outbox.SINCE] - timedelta(minutes=10)}})


def a_recording_on_file(org_id: str, room_id: str) -> None:
    """A recording of the class, on file in the media records (its retention counts from the end)."""
    media.insert_video(
        org_id,
        title="rec",
        size_bytes=10,
        content_type="video/mp4",
        kind="recording",
        room_id=room_id,
        bucket=RECORDINGS,
    )


# --- LiveKit's webhooks: redelivery after a lease ran out ------------------------------------------


def kill_without_release(monkeypatch) -> None:
    # A killed invocation runs no `except`: the id it claimed is not released.
    monkeypatch.setattr(hook_store, "release_event", lambda event_id: None)


def redeliver_until_done(delivery, lambda_context) -> str:
    """LiveKit's redelivery; a killed attempt's lease is made to run out (as minutes later) first.
    Returns the first reply."""
    try:
        first = deliver(rooms_handler, lambda_context, delivery).status
    except Killed:
        first = "killed"
    if first == "killed":
        # The attempt died holding the id: LiveKit's quick retry is told to come back...
        assert deliver(rooms_handler, lambda_context, delivery).status == 503
    else:
        assert first == 503
    # ...and once the lease ran out (minutes later; an attempt that failed after its work, marking
    # the id done, holds it too), its retry is handled.
    lease_runs_out()
    again = deliver(rooms_handler, lambda_context, delivery)
    assert again.status == 200 and again.data["duplicate"] is False
    assert deliver(rooms_handler, lambda_context, delivery).data["duplicate"] is True
    return str(first)


def lease_runs_out() -> None:
    """Every LiveKit webhook id's lease ran out (as minutes later)."""
    db.collection(records.HOOKS).update_many({}, {"$set": {"leaseUntil": media.now() - timedelta(minutes=1)}})
