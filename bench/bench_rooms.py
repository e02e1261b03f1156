"""Live-classroom benchmarks, each beside a baseline measured in the same run.

1. Token mint: our `lk.mint_token` (grants from the role policy, metadata) beside a bare
   livekit-api `AccessToken(...).to_jwt()` with the same grants.
2. Warm in-process `POST /v1/room/create` and `POST /v1/room/<id>/join` through the Lambda handler,
   with the real MongoDB-wire server, Redis and the LiveKit stand-in, beside the bare calls each
   makes (the rate-limit script, the balance and room reads, the LiveKit CreateRoom over the same
   livekit-api client on a plain event loop, the room insert, a bare token mint). Target: our own
   code at most 2 ms at p50.
3. Webhook ingestion: signed participant_joined / participant_left pairs through the handler
   (verify, dedupe, session state, ledger metering, domain events) beside the bare writes they need
   (the same inserts/updates, the ledger's exactly-once debit and PutEvents), as events per second.
   Target ratio at least 0.8. Both sides' MongoDB commands are counted afterwards (pymongo's
   command monitoring) and must match.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import secrets
import time
import uuid
from datetime import timedelta

from pymongo import monitoring
from support import ROOT, LambdaContext, Report, Result, local_stores, percentile, time_calls

if str(ROOT) not in __import__("sys").path:
    __import__("sys").path.insert(0, str(ROOT))  # the stand-in package lives at the repo root

MINT_CALLS = 2000
ROOM_CALLS = 600
HOOK_PAIRS = 300
COUNTED_PAIRS = 5  # after the timing: the MongoDB commands each side sends, counted


class CommandTally(monitoring.CommandListener):
    """pymongo's command monitoring: while `side` is set, counts the commands sent by collection, so
    the report shows both sides of the webhook comparison send the same ones (the baseline drifted
    before: writes the function gained were missing from it)."""

    def __init__(self) -> None:
        from collections import Counter

        self.side: str | None = None
        self.seen: dict[str, Counter] = {"ours": Counter(), "bare": Counter()}

    def started(self, event) -> None:
        if self.side is not None:
            target = event.command.get(event.command_name)
            self.seen[self.side][f"{event.command_name} {target}"] += 1

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


def _event(
    method: str, path: str, resource: str, key: str, body: dict | None, params: dict | None = None
) -> dict:
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"VF-ORG-ID": key, "Content-Type": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "pathParameters": params,
        "body": json.dumps(body) if body else None,
        "isBase64Encoded": False,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": "local",
            "identity": {"sourceIp": "127.0.0.1"},
        },
    }


def main() -> None:
    import moto

    tally = CommandTally()
    monitoring.register(tally)  # before any client exists; counts nothing until told to
    report = Report("rooms")
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto accepts any
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",
        POWERTOOLS_DEV="false",
        RATE_LIMIT_DEFAULT="100000000",
        EVENT_BUS_NAME="bench-events",
        RECORDINGS_BUCKET="bench-recordings",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with local_stores(), moto.mock_aws():
        import boto3

        from standins.livekit import StandIn

        key, secret = "APIbench", secrets.token_urlsafe(32)
        stand_in = StandIn(key, secret).start()  # no webhook URL: the handler is fed directly below
        os.environ["LIVEKIT_URL"] = stand_in.url
        boto3.client("secretsmanager").create_secret(
            Name="verriflo/livekit", SecretString=json.dumps({"apiKey": key, "apiSecret": secret})
        )
        boto3.client("secretsmanager").create_secret(Name="verriflo/jwt-secret", SecretString="x" * 40)
        boto3.client("events").create_event_bus(Name="bench-events")
        try:
            # Powertools prints one EMF metrics line per invocation; keep the report readable.
            with contextlib.redirect_stdout(io.StringIO()):
                _run(report, stand_in, key, secret, tally)
        finally:
            stand_in.stop()
    report.print()


def _run(report: Report, stand_in, key: str, secret: str, tally: CommandTally) -> None:
    from livekit.api import AccessToken, CreateRoomRequest, LiveKitAPI, VideoGrants
    from rooms import lk
    from rooms.handler import handler
    from rooms.policy import grants_for
    from verriflo import cache, db, ledger, orgs, ratelimit
    from verriflo.auth import authenticate

    ctx = LambdaContext(function_name="bench-rooms")
    org = orgs.create_org("Bench School")
    api_key = orgs.issue_key(org.id, "bench").secret
    ledger.grant(
        ledger.UsageEvent(entry_id="bench-grant", org_id=org.id, service="grant", credits=10_000_000)
    )
    ctx_org = authenticate({"VF-ORG-ID": api_key})
    grants = grants_for("STUDENT", {})
    meta = {"role": "STUDENT", "roomId": "r", "title": "Bench", "customization": {}}

    # --- 1. token mint ---------------------------------------------------------------------------
    def ours_mint() -> None:
        lk.mint_token(identity="s-1", name="Sam", room="org.r", grants=grants, metadata=meta, ttl_s=14400)

    video = VideoGrants(
        room_join=True,
        room="org.r",
        can_publish=False,
        can_subscribe=True,
        can_publish_data=True,
        can_publish_sources=[],
    )

    def bare_mint() -> None:
        (
            AccessToken(key, secret)
            .with_identity("s-1")
            .with_name("Sam")
            .with_metadata(json.dumps(meta))
            .with_grants(video)
            .with_ttl(timedelta(hours=4))
            .to_jwt()
        )

    o, b = time_calls(ours_mint, MINT_CALLS), time_calls(bare_mint, MINT_CALLS)
    report.add(Result("token mint p50", percentile(o, 50), "ms", baseline=percentile(b, 50)))
    report.add(Result("token mint rate", 1000 / percentile(o, 50), "/s", baseline=1000 / percentile(b, 50)))

    # --- 2. create and join --------------------------------------------------------------------------
    rooms_coll, balances = db.collection("rooms"), db.collection(ledger.BALANCES)
    loop = asyncio.new_event_loop()
    bare_client = loop.run_until_complete(_make_client(LiveKitAPI, stand_in.url, key, secret))
    counter = iter(range(10**9))

    def bare_grant(room_id: str, uid: str, role: str) -> None:
        """The token issued, remembered: the upsert grant_store.record_grant makes."""
        issued = orgs.now()
        db.collection("room_grants").update_one(
            {"orgId": org.id, "roomId": room_id, "uid": uid},
            {
                "$set": {
                    "orgId": org.id,
                    "roomId": room_id,
                    "uid": uid,
                    "role": role,
                    "issuedAt": issued,
                    "expiresAt": issued,
                    "purgeAt": issued,
                },
                "$unset": {"removedAt": "", "removedSids": ""},
            },
            upsert=True,
        )

    def ours_create() -> None:
        body = {"roomId": f"c-{next(counter)}", "title": "Bench", "participant": {"uid": "t", "name": "T"}}
        result = handler(_event("POST", "/v1/room/create", "/v1/room/create", api_key, body), ctx)
        assert result["statusCode"] == 200, result

    def bare_create() -> None:
        n = next(counter)
        ratelimit.hit(ctx_org, "rooms")
        balances.find_one({"_id": org.id}, {"creditsMilli": 1})
        balances.find_one({"_id": org.id}, {"caps": 1})  # the ledger's spending-cap check
        rooms_coll.find_one({"orgId": org.id, "roomId": f"b-{n}"})
        name = f"{org.id}.b-{n}"
        room = loop.run_until_complete(
            bare_client.room.create_room(
                CreateRoomRequest(name=name, empty_timeout=300, max_participants=1000, metadata="{}")
            )
        )
        rooms_coll.insert_one({"orgId": org.id, "roomId": f"b-{n}", "lkName": name, "sid": room.sid})
        bare_mint()
        bare_grant(f"b-{n}", "t", "TEACHER")

    join_body = {"participant": {"uid": "s-1", "name": "Sam", "role": "STUDENT"}}
    handler(
        _event(
            "POST",
            "/v1/room/create",
            "/v1/room/create",
            api_key,
            {"roomId": "join-me", "title": "Bench", "participant": {"uid": "t", "name": "T"}},
        ),
        ctx,
    )
    join_event = _event(
        "POST", "/v1/room/join-me/join", "/v1/room/{room_id}/join", api_key, join_body, {"room_id": "join-me"}
    )

    def ours_join() -> None:
        result = handler(join_event, ctx)
        assert result["statusCode"] == 200, result

    def bare_join() -> None:
        ratelimit.hit(ctx_org, "rooms")
        rooms_coll.find_one({"orgId": org.id, "roomId": "join-me"})
        balances.find_one({"_id": org.id}, {"creditsMilli": 1})
        balances.find_one({"_id": org.id}, {"caps": 1})
        bare_mint()
        bare_grant("join-me", "s-1", "STUDENT")

    for label, ours, bare in (
        ("POST /v1/room/create", ours_create, bare_create),
        ("POST /v1/room/<id>/join", ours_join, bare_join),
    ):
        ours_s: list[float] = []
        bare_s: list[float] = []
        for _ in range(6):  # interleaved, so drift on a shared machine hits both sides alike
            ours_s += time_calls(ours, ROOM_CALLS // 6, warmup=10)
            bare_s += time_calls(bare, ROOM_CALLS // 6, warmup=10)
        for q in (50, 99):
            ov, bv = percentile(ours_s, q), percentile(bare_s, q)
            report.add(Result(f"{label} p{q}", ov, "ms", baseline=bv))
            report.add(
                Result(
                    f"{label} our code over bare calls p{q}",
                    ov - bv,
                    "ms",
                    target="<= 2 ms" if q == 50 else "",
                    ok=(ov - bv) <= 2 if q == 50 else None,
                )
            )

    # --- 3. webhook ingestion ------------------------------------------------------------------------
    hooks = _webhooks(stand_in, org.id, HOOK_PAIRS + COUNTED_PAIRS)
    events_client = __import__("verriflo.aws", fromlist=["client"]).client("events")
    sessions, claims, ledger_coll, grants = (
        db.collection("room_sessions"),
        db.collection("livekit_events"),
        db.collection("ledger"),
        db.collection("room_grants"),
    )
    room = rooms_coll.find_one({"orgId": org.id, "roomId": "join-me"})

    def ingest(chunk: list[tuple[str, str]]) -> float:
        start = time.perf_counter()
        for body, auth in chunk:
            event = _event("POST", "/v1/livekit/webhook", "/v1/livekit/webhook", "", None)
            event["headers"] = {"Authorization": auth, "Content-Type": "application/webhook+json"}
            event["body"] = body
            result = handler(event, ctx)
            assert result["statusCode"] == 200, result
        return time.perf_counter() - start

    def bare(pairs: int, first: bool) -> float:
        from pymongo import ReturnDocument

        start = time.perf_counter()
        for i in range(pairs):
            sid, now = f"bare-{uuid.uuid4().hex}", orgs.now()
            for kind in ("joined", "left"):
                claim = f"EV_{sid}_{kind}"  # claimed for handling, then marked done (hook_store)
                claims.insert_one(
                    {"_id": claim, "at": now, "state": "handling", "leaseUntil": now, "expireAt": now}
                )
                rooms_coll.find_one({"lkName": room["lkName"]})
                if kind == "joined":
                    grants.find_one(  # is this uid removed from the room?
                        {"orgId": org.id, "roomId": "join-me", "uid": f"u{i}"},
                        {"uid": 1, "removedAt": 1, "removedSids": 1},
                    )
                    sessions.insert_one(
                        {
                            "_id": sid,
                            "orgId": org.id,
                            "roomId": "join-me",
                            "lkRoom": room["lkName"],
                            "uid": f"u{i}",
                            "role": "STUDENT",
                            "joinedAt": now,
                            "leftAt": None,
                        }
                    )
                    if first and i == 0:  # the class starts once
                        rooms_coll.update_one(
                            {"_id": room["_id"], "startedAt": None}, {"$set": {"startedAt": now}}
                        )
                else:
                    sessions.find_one({"_id": sid, "leftAt": None})
                    sessions.find_one_and_update(  # closed with its charge pending (session_store)
                        {"_id": sid, "leftAt": None},
                        {"$set": {"leftAt": now, "seconds": 1, "chargePending": True}},
                        return_document=ReturnDocument.AFTER,
                    )
                    # The ledger's exactly-once debit: move the balance (remembering the id), then the row.
                    balances.find_one_and_update(
                        {"_id": org.id, "recent": {"$ne": f"live:{sid}"}},
                        {
                            "$inc": {"creditsMilli": -17},
                            "$push": {"recent": {"$each": [f"live:{sid}"], "$slice": -32}},
                        },
                        return_document=ReturnDocument.AFTER,
                    )
                    ledger_coll.insert_one(
                        {"orgId": org.id, "entryId": f"live:{sid}", "amountMilli": 17, "occurredAt": now}
                    )
                    sessions.update_one({"_id": sid}, {"$unset": {"chargePending": ""}})  # charged
                events_client.put_events(
                    Entries=[
                        {
                            "Source": "verriflo",
                            "DetailType": f"participant.{kind}",
                            "Detail": json.dumps({"id": sid}),
                            "EventBusName": "bench-events",
                        }
                    ]
                )
                claims.update_one({"_id": claim}, {"$set": {"state": "done"}, "$unset": {"leaseUntil": ""}})
        return time.perf_counter() - start

    # Interleaved chunks, so drift on a shared machine hits both sides alike.
    chunks = 10
    size = HOOK_PAIRS // chunks
    ours_s = bare_s = 0.0
    for c in range(chunks):
        bare_s += bare(size, c == 0)
        ours_s += ingest(hooks[2 * size * c : 2 * size * (c + 1)])
    ours_rate, bare_rate = 2 * size * chunks / ours_s, 2 * size * chunks / bare_s
    for side, run in (
        ("bare", lambda: bare(COUNTED_PAIRS, False)),
        ("ours", lambda: ingest(hooks[-2 * COUNTED_PAIRS :])),
    ):
        tally.side = side
        run()
    tally.side = None
    ours_ops, bare_ops = tally.seen["ours"], tally.seen["bare"]
    report.add(
        Result(
            "webhook ingestion (events/s)",
            ours_rate,
            "/s",
            baseline=bare_rate,
            target="ratio >= 0.8",
            ok=ours_rate / bare_rate >= 0.8,
        )
    )
    report.add(
        Result(
            "webhook: our code per event (verify, route, logic)",
            1000 / ours_rate - 1000 / bare_rate,
            "ms",
            note="same MongoDB operations and PutEvents as the baseline",
        ),
        Result(
            "webhook: MongoDB commands per joined/left pair",
            sum(ours_ops.values()) / COUNTED_PAIRS,
            "",
            baseline=sum(bare_ops.values()) / COUNTED_PAIRS,
            target="the same as the baseline's",
            ok=ours_ops == bare_ops,
            note=""
            if ours_ops == bare_ops
            else f"ours only {ours_ops - bare_ops}, bare only {bare_ops - ours_ops}",
        ),
    )
    loop.run_until_complete(bare_client.aclose())
    loop.close()
    lk.reset()
    cache.reset_client()


async def _make_client(cls, url: str, key: str, secret: str):
    return cls(url, key, secret, failover=False)


def _webhooks(stand_in, org_id: str, pairs: int) -> list[tuple[str, str]]:
    """Signed participant_joined/left pairs for the room `join-me`, exactly as LiveKit would send them."""
    from google.protobuf import json_format
    from livekit.protocol import models, webhook

    name = f"{org_id}.join-me"
    out = []
    now = int(time.time())
    for i in range(pairs):
        participant = models.ParticipantInfo(
            sid=f"PA_{uuid.uuid4().hex[:12]}",
            identity=f"u{i}",
            name=f"U{i}",
            metadata=json.dumps({"role": "STUDENT"}),
            joined_at=now - 60,
        )
        for kind in ("participant_joined", "participant_left"):
            event = webhook.WebhookEvent(
                event=kind,
                id=f"EV_{uuid.uuid4().hex[:12]}",
                created_at=now,
                room=models.Room(name=name),
                participant=participant,
            )
            body = json_format.MessageToJson(event, indent=None)
            out.append((body, stand_in.sign(body)))
    return out


if __name__ == "__main__":
    main()
