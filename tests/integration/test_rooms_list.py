"""GET /v1/rooms in-process against the real MongoDB-wire server, Redis and the LiveKit stand-in:
newest first, filters, cursor paging, what each room shows, and only the caller's org's rooms."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from livekit_support import LiveKit, fund, rooms_event
from rooms.handler import handler
from support import api_event, call

pytest_plugins = ("livekit_support",)

T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)  # a clock the test sets; nothing compares it with now


def create(org, room_id, ctx, title=None):
    body = {"roomId": room_id, "title": title or room_id, "participant": {"uid": "t-1", "name": "Ada"}}
    reply = call(handler, api_event("rooms/create.json", headers=org.headers, body=body), ctx)
    assert reply.status == 200, reply.body
    return reply.data


def listing(org, ctx, **query):
    event = api_event("rooms/list.json", headers=org.headers, query={k: str(v) for k, v in query.items()})
    event["queryStringParameters"] = {k: str(v) for k, v in query.items()} or None
    event["multiValueQueryStringParameters"] = {k: [str(v)] for k, v in query.items()} or None
    return call(handler, event, ctx)


@pytest.fixture
def clock(monkeypatch):
    """Rooms are created at times the test chooses (one hour apart)."""
    from rooms import joining

    moment = {"t": T0}
    monkeypatch.setattr(joining, "now", lambda: moment["t"])
    return moment


@pytest.fixture
def funded(org, other_org):
    fund(org.id, 100_000)
    fund(other_org.id, 100_000)
    return org


def _create_hourly(org, ctx, clock, names):
    for i, name in enumerate(names):
        clock["t"] = T0 + timedelta(hours=i)
        create(org, name, ctx)


def test_lists_newest_first_and_pages_with_an_opaque_cursor(funded, livekit: LiveKit, lambda_context, clock):
    names = [f"class-{i}" for i in range(5)]
    _create_hourly(funded, lambda_context, clock, names)
    seen, cursor = [], None
    for _ in range(3):
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        reply = listing(funded, lambda_context, **query)
        assert reply.status == 200, reply.body
        seen += [r["roomId"] for r in reply.data["rooms"]]
        cursor = reply.data["nextCursor"]
        if cursor is None:
            break
        assert "class-" not in cursor  # opaque
    assert seen == list(reversed(names)) and cursor is None
    first = listing(funded, lambda_context).data["rooms"][0]
    assert first["title"] == "class-4" and first["status"] == "live" and first["sid"].startswith("RM_")
    assert first["createdAt"].startswith("2030-03-01T13:00") and first["startedAt"] is None
    assert first["participantsNow"] == 0 and first["totalParticipants"] == 0 and first["recordings"] == 0
    assert first["totalCredits"] == 0 and first["creditsByService"] == {}


def test_rooms_created_in_the_same_instant_are_each_listed_once(
    funded, livekit: LiveKit, lambda_context, clock
):
    for name in ("a", "b", "c"):
        create(funded, name, lambda_context)  # the clock does not move
    page1 = listing(funded, lambda_context, limit=2).data
    page2 = listing(funded, lambda_context, limit=2, cursor=page1["nextCursor"]).data
    ids = [r["roomId"] for r in page1["rooms"] + page2["rooms"]]
    assert sorted(ids) == ["a", "b", "c"] and page2["nextCursor"] is None


def test_filters_by_status_and_creation_time(funded, livekit: LiveKit, lambda_context, clock):
    _create_hourly(funded, lambda_context, clock, ["early", "middle", "late"])
    assert (
        call(handler, rooms_event("destroy", funded.headers, room_id="middle"), lambda_context).status == 200
    )
    finished = listing(funded, lambda_context, status="finished").data["rooms"]
    assert [r["roomId"] for r in finished] == ["middle"] and finished[0]["endedAt"]
    live = listing(funded, lambda_context, status="live").data["rooms"]
    assert [r["roomId"] for r in live] == ["late", "early"]
    window = listing(
        funded,
        lambda_context,
        **{"from": (T0 + timedelta(minutes=30)).isoformat(), "to": (T0 + timedelta(hours=2)).isoformat()},
    ).data["rooms"]
    assert [r["roomId"] for r in window] == ["middle"]
    # (a bound equal to a creation instant is left out: SecantusDB's $gte on a descending index
    # misses equality; MongoDB's does not)
    since = listing(funded, lambda_context, **{"from": (T0 + timedelta(minutes=59)).isoformat()}).data[
        "rooms"
    ]
    assert [r["roomId"] for r in since] == ["late", "middle"]


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ({"status": "open"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2030-03-01T10:00:00Z", "to": "2030-03-01T09:00:00Z"}, "'from' must be before 'to'"),
        ({"from": "2030-03-01T10:00:00"}, "time zone"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "eyJ0IjogMX0"}, "cursor"),  # base64 JSON of the wrong shape
    ],
)
def test_bad_filters_are_a_400_envelope(funded, livekit: LiveKit, lambda_context, query, needle):
    reply = listing(funded, lambda_context, **query)
    assert reply.status == 400, reply.body
    assert reply.body["success"] is False and reply.body["error"] == "VALIDATION_ERROR"
    assert needle in reply.body["message"]


def test_another_orgs_rooms_never_appear(funded, other_org, livekit: LiveKit, lambda_context, clock):
    create(other_org, "theirs", lambda_context, title="Their secret class")
    create(funded, "ours", lambda_context)
    mine = listing(funded, lambda_context).data
    assert [r["roomId"] for r in mine["rooms"]] == ["ours"]
    assert "secret" not in json.dumps(mine).lower()
    # their cursor pages nothing of theirs for us
    theirs = listing(other_org, lambda_context, limit=1).data
    assert [r["roomId"] for r in theirs["rooms"]] == ["theirs"]


def test_each_room_shows_participants_recordings_and_the_ledgers_credits(
    funded, livekit: LiveKit, lambda_context
):
    from verriflo import ledger

    created = create(funded, "physics", lambda_context)
    name = f"{funded.id}.physics"
    join = call(
        handler,
        rooms_event(
            "join", funded.headers, {"participant": {"uid": "s-1", "name": "Sam"}}, room_id="physics"
        ),
        lambda_context,
    ).data
    livekit.join(name, created["token"])
    livekit.join(name, join["token"])
    livekit.pump(handler, lambda_context, "participant_joined", "participant_joined")
    for service, credits in (("ai_tutor", "1.5"), ("transcode", "0.4")):
        ledger.record_usage(
            ledger.UsageEvent(
                entry_id=f"{service}-1",
                org_id=funded.id,
                service=service,
                credits=Decimal(credits),
                room_id="physics",
            )
        )
    live = listing(funded, lambda_context).data["rooms"][0]
    assert live["participantsNow"] == 2 and live["totalParticipants"] == 2 and live["startedAt"]
    assert live["creditsByService"] == {"ai_tutor": 1.5, "transcode": 0.4} and live["totalCredits"] == 1.9
    livekit.leave(name, "s-1")
    livekit.pump(handler, lambda_context, "participant_left")
    after = listing(funded, lambda_context).data["rooms"][0]
    assert after["participantsNow"] == 1 and after["totalParticipants"] == 2
    assert "live" in after["creditsByService"]  # Sam's minutes (a moment: they may round to 0)
    summary = call(handler, rooms_event("summary", funded.headers, room_id="physics"), lambda_context).data
    assert summary["creditsByService"] == after["creditsByService"]
    assert (
        summary["totalCredits"]
        == after["totalCredits"]
        == pytest.approx(sum(after["creditsByService"].values()))
    )


def test_a_page_costs_the_same_few_queries_whatever_its_size(
    funded, livekit: LiveKit, lambda_context, monkeypatch
):
    """No query per room: rooms, sessions, recordings and ledger are each read once for the page
    (and the listing's own query uses the (orgId, createdAt, _id) index)."""
    from rooms import records, store
    from verriflo import db

    for i in range(12):
        create(funded, f"room-{i}", lambda_context)
    reads: list[str] = []
    real = db.collection

    class Counting:
        def __init__(self, name):
            self._coll = real(name)
            self._name = name

        def __getattr__(self, attr):
            if attr in ("find", "find_one", "aggregate", "count_documents"):
                reads.append(f"{self._name}.{attr}")
            return getattr(self._coll, attr)

    monkeypatch.setattr(store.db, "collection", Counting)
    costs = {}
    for limit in (2, 12):
        reads.clear()
        assert len(listing(funded, lambda_context, limit=limit).data["rooms"]) == limit
        costs[limit] = sorted(r for r in reads if not r.startswith(("orgs", "api_keys", "keys")))
    assert (
        costs[2]
        == costs[12]
        == ["ledger.aggregate", "recordings.aggregate", "room_sessions.aggregate", "rooms.find"]
    )
    monkeypatch.undo()
    plan = real(records.ROOMS).find({"orgId": funded.id}).sort([("createdAt", -1), ("_id", -1)]).explain()
    assert "IXSCAN" in json.dumps(plan, default=str)
