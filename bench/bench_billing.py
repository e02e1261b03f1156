"""Billing and webhook benchmarks.

1. Ledger debits per second from 50 concurrent workers against the real MongoDB-wire server, with the
   final balance checked exactly, beside bare conditional `find_one_and_update` debits of one
   document in the same run (the database's own limit). Target ratio >= 0.8. Beside both, the
   two-write floor: the same bare update followed by an insert of the smallest possible row, what this
   server allows any ledger that records an entry per debit. The previous design (one
   multi-document transaction per entry) is measured too, for the record.
2. Webhook signing cost per delivery (Standard Webhooks HMAC-SHA256), beside a bare hashlib HMAC.
3. Dispatcher deliveries per second to a local HTTP receiver, beside bare httpx POSTs to it.

With BENCH_LEDGER_PROBE=1 it also prints what the alternatives to the ledger's two writes would cost
on this server, each beside the same bare update: a ledger row alone (insert_one, the ledger's
indexes), a row inserted in batches of 32 (insert_many), and the conditional update itself when the
balance document also carries a buffer of N encoded entries, the least any two-write ledger costs
(the bare update plus a row without secondary indexes), and the "ledger pages" design end to end
(one write per debit into a buffer in the balance document, flushed as one page document of 16 or
32 entries). See the README's billing section for what these figures decided.
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from support import Report, Result, local_stores

WORKERS = 50
DEBITS = int(os.environ.get("BENCH_DEBITS", "3000"))


def _rate(fn, n: int) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(fn, range(n)))
    return n / (time.perf_counter() - start)


def ledger_throughput(report: Report) -> None:
    with local_stores():
        os.environ.update(
            AWS_DEFAULT_REGION="us-east-1", POWERTOOLS_LOG_LEVEL="WARNING", POWERTOOLS_TRACE_DISABLED="true"
        )
        from pymongo import ReturnDocument
        from pymongo.read_concern import ReadConcern
        from pymongo.write_concern import WriteConcern
        from verriflo import db, ledger

        start_milli = 10**12
        bare = db.collection("bench_bare")
        bare.insert_one({"_id": "one", "creditsMilli": start_milli})

        def bare_debit(_: int) -> None:
            bare.find_one_and_update(
                {"_id": "one", "creditsMilli": {"$gte": 1000}},
                {"$inc": {"creditsMilli": -1000}},
                return_document=ReturnDocument.AFTER,
            )

        rows = db.collection("bench_rows")

        def floor_debit(_: int) -> None:
            # the least any ledger that writes its entry beside the balance does: the same update and
            # an insert of the smallest row (no secondary index)
            bare_debit(0)
            rows.insert_one({"_id": f"u-{uuid.uuid4().hex}", "amountMilli": 1000})

        org = f"org_bench_{uuid.uuid4().hex[:8]}"
        ledger.grant(
            ledger.UsageEvent(entry_id="g", org_id=org, service="grant", credits=start_milli // 1000)
        )

        def ledger_debit(i: int) -> None:
            ledger.record_usage(
                ledger.UsageEvent(entry_id=f"u-{i}", org_id=org, service="ai_tutor", credits=1)
            )

        tx_balance, tx_entries = db.collection("bench_tx_balance"), db.collection("bench_tx_ledger")
        tx_balance.insert_one({"_id": "one", "creditsMilli": start_milli})

        def tx_debit(i: int) -> None:
            def work(session) -> None:
                tx_balance.find_one_and_update(
                    {"_id": "one"},
                    {"$inc": {"creditsMilli": -1000}},
                    session=session,
                    return_document=ReturnDocument.AFTER,
                )
                tx_entries.insert_one({"entryId": f"u-{i}", "amountMilli": 1000}, session=session)

            with db.client().start_session() as session:
                session.with_transaction(
                    work, read_concern=ReadConcern("snapshot"), write_concern=WriteConcern("majority")
                )

        _rate(bare_debit, 300)  # warm the server and the pool
        half = DEBITS // 2
        bare_rates, floor_rates, ledger_rates = [], [], []
        for round_ in range(2):  # interleaved, so drift on a shared machine hits all alike
            bare_rates.append(_rate(bare_debit, half))
            floor_rates.append(_rate(floor_debit, half))
            ledger_rates.append(_rate(lambda i, r=round_: ledger_debit(r * half + i), half))
        tx_rate = _rate(tx_debit, max(300, DEBITS // 10))

        expected = start_milli - 2 * half * 1000
        exact = ledger.balance_milli(org) == expected
        entries = db.collection(ledger.LEDGER).count_documents({"orgId": org, "kind": "debit"})
        b, fl, lg = sum(bare_rates) / 2, sum(floor_rates) / 2, sum(ledger_rates) / 2
        report.add(
            Result("bare conditional debit of one document, 50 workers", b, "/s"),
            Result(
                "two-write floor: the same debit + insert of a minimal row, 50 workers",
                fl,
                "/s",
                baseline=b,
                note="what this server allows any ledger that records an entry per debit",
            ),
            Result(
                "ledger debit (balance + entry, exactly once), 50 workers",
                lg,
                "/s",
                baseline=b,
                target="ratio >= 0.8",
                ok=lg / b >= 0.8,
                note=f"final balance exact: {exact}, entries {entries}/{2 * half}",
            ),
            Result(
                "ledger debit beside the two-write floor",
                lg,
                "/s",
                baseline=fl,
                note="the ledger's own cost over the database's limit for its two writes",
            ),
            Result(
                "previous design: one transaction per debit, 50 workers",
                tx_rate,
                "/s",
                baseline=b,
                note="for comparison",
            ),
        )
        if not exact or entries != 2 * half:
            raise SystemExit("ledger balance is not exact")


def design_probe(report: Report) -> None:
    """Per-operation throughput of the building blocks of a one-write ledger, beside a bare update."""
    with local_stores():
        import bson
        from bson import ObjectId
        from pymongo import ReturnDocument
        from verriflo import db, ledger, settings

        settings.reset_settings()
        db.reset_client()  # an earlier benchmark's server is gone; this is a fresh one
        bare = db.collection("probe_bare")
        bare.insert_one({"_id": "one", "creditsMilli": 10**12})

        def bare_debit(_: int) -> None:
            bare.find_one_and_update(
                {"_id": "one", "creditsMilli": {"$gte": 1000}},
                {"$inc": {"creditsMilli": -1000}},
                return_document=ReturnDocument.AFTER,
            )

        rows = db.collection("probe_ledger")
        rows.create_indexes(ledger.records._ledger_indexes())

        def row(i: int) -> dict:
            return {
                "_id": ObjectId(),
                "orgId": "org_probe",
                "entryId": f"u-{uuid.uuid4().hex}",
                "service": "ai_tutor",
                "kind": "debit",
                "amountMilli": 1000,
                "quantity": 0,
                "unit": "credit",
                "roomId": None,
                "studentId": None,
                "meta": {},
                "occurredAt": datetime.now(UTC),
                "recordedAt": datetime.now(UTC),
                "expiresAt": None,
                "balanceAfterMilli": i,
            }

        blob = bson.encode(row(0))

        def buffered(n: int):
            coll = db.collection(f"probe_buffer_{n}")
            coll.insert_one({"_id": "o", "creditsMilli": 0, "recent": [], "pending": [blob] * n})

            def debit(i: int) -> None:
                coll.find_one_and_update(
                    {"_id": "o", "recent": {"$ne": f"u-{i}"}},
                    {
                        "$inc": {"creditsMilli": -1000},
                        "$push": {
                            "recent": {"$each": [f"u-{i}"], "$slice": -32},
                            "pending": {"$each": [blob], "$slice": -n - 1},
                        },
                    },
                    projection={"creditsMilli": 1},
                    return_document=ReturnDocument.AFTER,
                )

            return debit

        _rate(bare_debit, 300)
        b = _rate(bare_debit, 600)
        one = _rate(lambda i: rows.insert_one(row(i)), 600)
        many = 32 * _rate(lambda i: rows.insert_many([row(i) for _ in range(32)], ordered=False), 30)
        report.add(
            Result("probe: bare conditional update", b, "/s"),
            Result("probe: ledger row, insert_one", one, "/s", baseline=b),
            Result("probe: ledger rows, insert_many of 32 (per row)", many, "/s", baseline=b),
        )
        for n in (0, 32, 128, 256):
            rate = _rate(buffered(n), 600)
            report.add(Result(f"probe: update carrying a buffer of {n} entries", rate, "/s", baseline=b))
        for per_page in (16, 32):
            rate = _rate(ledger_pages(per_page), 600)
            report.add(
                Result(f"probe: one-write ledger pages of {per_page}, end to end", rate, "/s", baseline=b)
            )


def ledger_pages(per_page: int):
    """A debit of the "ledger pages" design: one conditional update appends the entry to a buffer in
    the balance document (its id checked there); every `per_page` entries one writer claims the buffer,
    stores it as one page document (a unique multikey index on the entry ids guards replays for all
    time) and removes it from the buffer."""
    from pymongo import IndexModel, ReturnDocument
    from verriflo import db

    tag = uuid.uuid4().hex[:6]
    balance, pages = db.collection(f"probe_pages_balance_{tag}"), db.collection(f"probe_pages_{tag}")
    pages.create_indexes(
        [IndexModel([("orgId", 1), ("first", -1)]), IndexModel([("orgId", 1), ("entries.i", 1)], unique=True)]
    )
    balance.insert_one({"_id": "o", "creditsMilli": 10**12, "n": 0, "buf": [], "page": 0})

    def flush() -> None:
        doc = balance.find_one_and_update(
            {"_id": "o", "flushing": {"$ne": True}, "n": {"$gte": per_page}},
            {"$set": {"flushing": True}},
            projection={"buf": 1, "page": 1},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return
        buf = doc["buf"]
        pages.insert_one({"_id": f"o:{doc['page']}", "orgId": "o", "first": buf[0]["t"], "entries": buf})
        balance.update_one(
            {"_id": "o"},
            {
                "$pull": {"buf": {"i": {"$in": [e["i"] for e in buf]}}},
                "$inc": {"n": -len(buf), "page": 1},
                "$set": {"flushing": False},
            },
        )

    def debit(_: int) -> None:
        entry_id = f"u-{uuid.uuid4().hex}"
        entry = {"i": entry_id, "a": -1000, "s": "ai_tutor", "t": datetime.now(UTC)}
        doc = balance.find_one_and_update(
            {"_id": "o", "buf.i": {"$ne": entry_id}},
            {"$inc": {"creditsMilli": -1000, "n": 1}, "$push": {"buf": entry}},
            projection={"creditsMilli": 1, "n": 1},
            return_document=ReturnDocument.AFTER,
        )
        if doc["n"] >= per_page and doc["n"] % (per_page // 2) == 0:
            flush()

    return debit


def signing_cost(report: Report) -> None:
    import base64
    import hashlib
    import hmac
    import json
    import statistics
    from datetime import UTC, datetime

    from support import time_calls
    from verriflo import webhooks

    secret = webhooks.new_secret()
    key = base64.b64decode(secret[6:])
    event = {
        "id": "evt_" + "0" * 32,
        "type": "room.finished",
        "orgId": "org_x",
        "createdAt": "2026-11-28T00:00:00Z",
        "data": {"roomId": "math-101", "participants": list(range(50))},
    }
    body = webhooks.body_of(event)
    at = datetime.now(UTC)

    def bare() -> None:
        mac = hmac.new(key, f"msg_1.{int(at.timestamp())}.{body}".encode(), hashlib.sha256).digest()
        base64.b64encode(mac)

    def ours() -> None:
        webhooks.sign([secret], "msg_1", at, webhooks.body_of(json.loads(body)))

    b = statistics.median(time_calls(bare, 5000)) * 1000
    o = statistics.median(time_calls(ours, 5000)) * 1000
    report.add(
        Result("bare HMAC-SHA256 + base64 of one delivery", b, "us"),
        Result(
            "signing one delivery (serialise + Standard Webhooks sign)",
            o,
            "us",
            baseline=b,
            target="< 100 us",
            ok=o < 100,
            note=f"body {len(body)} bytes",
        ),
    )


def dispatch_throughput(report: Report) -> None:
    import moto

    with local_stores(), moto.mock_aws():
        import boto3
        import httpx
        from verriflo import db, events, settings, webhook_store, webhooks

        settings.reset_settings()
        db.reset_client()  # the ledger benchmark's server is gone; this is a fresh one
        from webhook_dispatcher import logic
        from webhook_receivers import start_receivers

        os.environ.update(
            AWS_DEFAULT_REGION="us-east-1",
            WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
            WEBHOOK_QUEUE_URL="unused",
            POWERTOOLS_LOG_LEVEL="WARNING",
        )
        boto3.client("secretsmanager").create_secret(
            Name="verriflo/webhook-key", SecretString=uuid.uuid4().hex
        )
        webhooks.reset_keys()
        receivers = start_receivers()
        n = int(os.environ.get("BENCH_DELIVERIES", "600"))
        concurrency = webhooks.webhook_settings().concurrency
        try:
            endpoint, _ = webhook_store.create_endpoint("org_bench", receivers.url("ok"), "", [])
            batch = [
                webhook_store.ensure_delivery(endpoint, events.build("room.finished", "org_bench", {"i": i}))[
                    0
                ]
                for i in range(n)
            ]
            client = httpx.Client(limits=httpx.Limits(max_connections=concurrency * 2))

            def bare(d: webhook_store.Delivery) -> None:
                client.post(
                    receivers.url("ok"), content=d.body.encode(), headers={"content-type": "application/json"}
                ).raise_for_status()

            start = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(bare, batch))
            bare_rate = n / (time.perf_counter() - start)
            start = time.perf_counter()
            logic.attempt_all(batch)
            rate = n / (time.perf_counter() - start)
            delivered = sum(1 for d in batch if webhook_store.find_delivery(d.id).status == "succeeded")
        finally:
            receivers.server.shutdown()
        report.add(
            Result(f"bare httpx POSTs to a local receiver, {concurrency} at once", bare_rate, "/s"),
            Result(
                "dispatcher deliveries (claim, sign, SSRF check, POST, log)",
                rate,
                "/s",
                baseline=bare_rate,
                note=f"{delivered}/{n} delivered; each also writes 3 documents",
            ),
        )
        if delivered != n:
            raise SystemExit("not every delivery succeeded")


def main() -> None:
    report = Report("billing and webhooks")
    ledger_throughput(report)
    if os.environ.get("BENCH_LEDGER_PROBE") == "1":
        design_probe(report)
    signing_cost(report)
    dispatch_throughput(report)
    report.print()


if __name__ == "__main__":
    main()
