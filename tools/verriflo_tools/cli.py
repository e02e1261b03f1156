"""`verriflo`: the operators' command-line tool (orgs, keys, rate limits, credits, users, OpenAPI).

It talks to the same MongoDB as the functions (MONGODB_URI) through the same common package, so
every rule (hashing, idempotent ledger entries, indexes) holds for changes made here too.
"""

from __future__ import annotations

import argparse
import getpass
import json
import secrets
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from verriflo import auth, db, ledger, orgs
from verriflo.errors import VerrifloError

from verriflo_tools import video_cli


def _print(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, default=str, indent=None if args.json else 2) if args.json else text)


def _org_create(args: argparse.Namespace) -> None:
    if args.credit_limit and args.plan != "postpaid":
        raise SystemExit("--credit-limit is for postpaid orgs")
    org = orgs.create_org(args.name, plan=args.plan, billing_cycle=args.billing_cycle)
    issued = orgs.issue_key(org.id, "default")
    if args.credit_limit:
        ledger.configure(org.id, credit_limit_milli=ledger.to_milli(args.credit_limit))
    if args.credits:
        ledger.grant(
            ledger.UsageEvent(
                entry_id=f"grant-initial-{org.id}",
                org_id=org.id,
                service="grant",
                credits=args.credits,
                meta={"note": "initial credits"},
            )
        )
    _print(
        args,
        {"orgId": org.id, "name": org.name, "apiKey": issued.secret, "keyId": issued.key.id},
        f"org {org.id} ({org.name})\nAPI key (shown once): {issued.secret}",
    )


def _org_list(args: argparse.Namespace) -> None:
    rows = [orgs.Org.model_validate(d) for d in db.collection(orgs.ORGS).find().sort("createdAt", 1)]
    data = [
        {
            "orgId": o.id,
            "name": o.name,
            "plan": o.plan,
            "status": o.status,
            "creditsMilli": ledger.balance_milli(o.id),
        }
        for o in rows
    ]
    _print(
        args,
        {"orgs": data},
        "\n".join(
            f"{o['orgId']}  {o['plan']:<8} {ledger.from_milli(o['creditsMilli']):>12.3f} credits  {o['name']}"
            for o in data
        )
        or "no orgs",
    )


def _set_rate_limit(args: argparse.Namespace) -> None:
    limit = None if args.clear else orgs.RateLimit(limit=args.limit, window=args.window)
    org = orgs.set_rate_limit(args.org_id, args.group, limit)
    auth.clear_cache()
    limits = {g: lim.model_dump() for g, lim in org.rate_limits.items()}
    _print(args, {"orgId": org.id, "rateLimits": limits}, json.dumps(limits))


def _key_issue(args: argparse.Namespace) -> None:
    issued = orgs.issue_key(args.org_id, args.name)
    _print(
        args,
        {"keyId": issued.key.id, "prefix": issued.key.prefix, "apiKey": issued.secret},
        f"key {issued.key.id} ({issued.key.prefix})\nAPI key (shown once): {issued.secret}",
    )


def _key_list(args: argparse.Namespace) -> None:
    keys = orgs.list_keys(args.org_id)
    _print(
        args,
        {"keys": [k.model_dump(mode="json") for k in keys]},
        "\n".join(
            f"{k.id}  {k.prefix}  {k.name:<16} {'revoked ' + str(k.revoked_at) if k.revoked_at else 'active'}"
            for k in keys
        )
        or "no keys",
    )


def _key_revoke(args: argparse.Namespace) -> None:
    key = orgs.revoke_key(args.org_id, args.key_id)
    _print(args, {"keyId": key.id, "revokedAt": key.revoked_at}, f"revoked {key.id} at {key.revoked_at}")


def _credits_add(args: argparse.Namespace) -> None:
    orgs.get_org(args.org_id)
    expires = orgs.now() + timedelta(days=args.expires_days) if args.expires_days else None
    entry = ledger.grant(
        ledger.UsageEvent(
            entry_id=args.grant_id or f"grant-{uuid.uuid4().hex}",
            org_id=args.org_id,
            service="grant",
            credits=args.amount,
            meta={"note": args.note or "operator grant"},
            expires_at=expires,
        )
    )
    balance = ledger.from_milli(entry.balance_after_milli)
    _print(
        args,
        {"orgId": args.org_id, "entryId": entry.entry_id, "duplicate": entry.duplicate, "balance": balance},
        f"balance of {args.org_id}: {balance} credits",
    )


def _credits_check(args: argparse.Namespace) -> None:
    drift, balance = ledger.drift_milli(args.org_id), ledger.balance_milli(args.org_id)
    verdict = "matches the ledger" if drift == 0 else f"differs from the ledger by {ledger.from_milli(drift)}"
    _print(
        args,
        {"orgId": args.org_id, "balanceMilli": balance, "driftMilli": drift},
        f"balance {ledger.from_milli(balance)} credits; {verdict}",
    )


def _credits_expire(args: argparse.Namespace) -> None:
    removed = ledger.expire_grants(args.org_id)
    total = ledger.from_milli(sum(e.amount_milli for e in removed))
    _print(
        args,
        {"expired": [e.model_dump(mode="json", by_alias=True) for e in removed]},
        f"{len(removed)} grant(s) expired, {total} credits removed",
    )


def _credits_limits(args: argparse.Namespace) -> None:
    org = orgs.get_org(args.org_id)
    if args.credit_limit is not None and org.plan != "postpaid":
        raise SystemExit("a credit limit is for postpaid orgs (billed at the end of their cycle)")
    current = ledger.state(args.org_id).caps

    def milli(value: float | None, old: int | None) -> int | None:
        if value is None:
            return old
        return None if value < 0 else ledger.to_milli(value)

    caps = ledger.Caps(
        orgMonthlyMilli=milli(args.org_monthly, current.org_monthly_milli),
        roomMilli=milli(args.room, current.room_milli),
        studentMonthlyMilli=milli(args.student_monthly, current.student_monthly_milli),
    )
    low = ledger.to_milli(args.low) if args.low is not None else None
    limit = ledger.to_milli(max(args.credit_limit, 0)) if args.credit_limit is not None else None
    state = ledger.configure(args.org_id, caps=caps, low_mark_milli=low, credit_limit_milli=limit)
    data = {
        "caps": state.caps.model_dump(by_alias=True),
        "lowMarkMilli": state.low_mark_milli,
        "creditLimitMilli": state.credit_limit_milli,
    }
    _print(args, {"orgId": args.org_id} | data, json.dumps(data))


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise SystemExit("passwords differ")
    return first


def _user_create(args: argparse.Namespace) -> None:
    password = _read_password(args)
    if len(password) < 12:
        raise SystemExit("use a password of at least 12 characters")
    user = orgs.create_user(
        args.org_id,
        args.email,
        auth.hash_password(password),
        role=orgs.canonical_role(args.role),
        name=args.name,
    )
    _print(
        args, {"userId": user.id, "email": user.email, "role": user.role}, f"user {user.id} <{user.email}>"
    )


def _seed_demo(args: argparse.Namespace) -> None:
    org = orgs.create_org("Demo School")
    issued = orgs.issue_key(org.id, "demo")
    ledger.grant(
        ledger.UsageEvent(
            entry_id=f"grant-demo-{org.id}",
            org_id=org.id,
            service="grant",
            credits=10_000,
            meta={"note": "demo credits"},
        )
    )
    # Two dashboard logins, passwords made here for this org (never stored in the repo): the owner
    # for everything, a viewer for the read-only walk-through.
    logins = {}
    for role in ("owner", "viewer"):
        email = f"{role}+{org.id[-6:]}@demo.verriflo.dev"
        password = secrets.token_urlsafe(12)
        orgs.create_user(org.id, email, auth.hash_password(password), role=role, name=f"Demo {role.title()}")
        logins[role] = (email, password)
    (owner, owner_password), (viewer, viewer_password) = logins["owner"], logins["viewer"]
    _print(
        args,
        {
            "orgId": org.id,
            "apiKey": issued.secret,
            "ownerEmail": owner,
            "ownerPassword": owner_password,
            "viewerEmail": viewer,
            "viewerPassword": viewer_password,
            "credits": 10_000,
        },
        f"demo org {org.id}\nAPI key: {issued.secret}\ndashboard login: {owner} / {owner_password}"
        f"\nread-only login: {viewer} / {viewer_password}",
    )


def _db_init(args: argparse.Namespace) -> None:
    import verriflo.ledger  # noqa: F401 - registers the ledger's indexes
    import verriflo.orgs  # noqa: F401
    import verriflo.webhook_store  # noqa: F401 - registers the webhook collections' indexes

    names = db.ensure_all_indexes()
    _print(args, {"collections": names}, "indexes ensured: " + ", ".join(names))


def _webhooks_redrive(args: argparse.Namespace) -> None:
    from verriflo import webhook_store, webhooks

    settings = webhooks.webhook_settings()
    dlq = args.dead_letter_queue_url or settings.dead_letter_queue_url
    queue = args.queue_url or settings.queue_url
    if not dlq or not queue:
        raise SystemExit(
            "give --dead-letter-queue-url and --queue-url (the stack's WebhookDeadLetterQueueUrl and "
            "WebhookQueueUrl outputs), or set WEBHOOK_DEAD_LETTER_QUEUE_URL and WEBHOOK_QUEUE_URL"
        )
    moved = webhook_store.redrive(dead_letter_queue_url=dlq, queue_url=queue, limit=args.max)
    _print(args, {"moved": moved}, f"moved {moved} message(s) back to the webhook queue")


def _openapi(args: argparse.Namespace) -> None:
    from verriflo.openapi_document import DOCUMENT

    from verriflo_tools.openapi import build_document, render

    text = render(build_document(Path(args.functions)))
    if args.check:
        if not DOCUMENT.exists() or DOCUMENT.read_text() != text:
            raise SystemExit("openapi.json is out of date: run `verriflo openapi --write`")
        print("openapi.json is up to date")
    elif args.write:
        DOCUMENT.write_text(text)
        print(f"wrote {DOCUMENT}")
    else:
        sys.stdout.write(text)


def parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    p = argparse.ArgumentParser(prog="verriflo", description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="machine-readable output")
    sub = p.add_subparsers(required=True, metavar="command")

    org = sub.add_parser("org", help="organisations").add_subparsers(required=True, metavar="action")
    c = org.add_parser("create", help="create an org and its first API key")
    c.add_argument("name")
    c.add_argument("--plan", choices=["prepaid", "postpaid"], default="prepaid")
    c.add_argument("--billing-cycle", choices=["weekly", "monthly"])
    c.add_argument("--credits", type=float, default=0, help="initial credit grant")
    c.add_argument("--credit-limit", type=float, default=0, help="postpaid: how far below zero it may spend")
    c.set_defaults(func=_org_create)
    org.add_parser("list", help="list orgs with balances").set_defaults(func=_org_list)
    r = org.add_parser("set-rate-limit", help="set an org's budget for a route group (or 'default')")
    r.add_argument("org_id")
    r.add_argument("group")
    r.add_argument("limit", type=int, nargs="?")
    r.add_argument("--window", type=int, default=60, help="seconds (default 60)")
    r.add_argument("--clear", action="store_true", help="remove the org's own budget for the group")
    r.set_defaults(func=_set_rate_limit)

    key = sub.add_parser("key", help="API keys").add_subparsers(required=True, metavar="action")
    k = key.add_parser("issue", help="issue a key (shown once)")
    k.add_argument("org_id")
    k.add_argument("--name", default="default")
    k.set_defaults(func=_key_issue)
    k = key.add_parser("list", help="list an org's keys")
    k.add_argument("org_id")
    k.set_defaults(func=_key_list)
    k = key.add_parser("revoke", help="revoke a key")
    k.add_argument("org_id")
    k.add_argument("key_id")
    k.set_defaults(func=_key_revoke)

    credits = sub.add_parser("credits", help="credits").add_subparsers(required=True, metavar="action")
    g = credits.add_parser("add", help="grant credits (idempotent with --grant-id)")
    g.add_argument("org_id")
    g.add_argument("amount", type=float)
    g.add_argument("--expires-days", type=int)
    g.add_argument("--note")
    g.add_argument("--grant-id", help="idempotency key: the same id is granted once")
    g.set_defaults(func=_credits_add)
    g = credits.add_parser("check", help="compare an org's balance with the sum of its ledger entries")
    g.add_argument("org_id")
    g.set_defaults(func=_credits_check)
    g = credits.add_parser("expire", help="remove what is left of expired grants (all orgs, or one)")
    g.add_argument("org_id", nargs="?")
    g.set_defaults(func=_credits_expire)
    g = credits.add_parser("limits", help="set spending caps (-1 clears one) and the low mark")
    g.add_argument("org_id")
    g.add_argument("--org-monthly", type=float)
    g.add_argument("--room", type=float)
    g.add_argument("--student-monthly", type=float)
    g.add_argument("--low", type=float, help="credits.low fires below this balance")
    g.add_argument("--credit-limit", type=float, help="postpaid: how far below zero it may spend (-1 clears)")
    g.set_defaults(func=_credits_limits)

    user = sub.add_parser("user", help="dashboard users").add_subparsers(required=True, metavar="action")
    u = user.add_parser("create", help="create a dashboard user (password from a prompt or stdin)")
    u.add_argument("org_id")
    u.add_argument("email")
    u.add_argument("--role", choices=["owner", "admin", "member", "viewer", "developer"], default="member")
    u.add_argument("--name", default="")
    u.add_argument("--password-stdin", action="store_true")
    u.set_defaults(func=_user_create)

    sub.add_parser(
        "seed-demo", help="create a demo org with credits, a key, an owner and a viewer"
    ).set_defaults(func=_seed_demo)
    sub.add_parser("db-init", help="create every index").set_defaults(func=_db_init)
    hooks = sub.add_parser("webhooks", help="webhook delivery").add_subparsers(
        required=True, metavar="action"
    )
    w = hooks.add_parser("redrive", help="move dead-lettered webhook messages back to the dispatcher's queue")
    w.add_argument("--dead-letter-queue-url", help="default: WEBHOOK_DEAD_LETTER_QUEUE_URL")
    w.add_argument("--queue-url", help="default: WEBHOOK_QUEUE_URL")
    w.add_argument("--max", type=int, default=1000, help="move at most this many (default 1000)")
    w.set_defaults(func=_webhooks_redrive)
    o = sub.add_parser("openapi", help="build the merged OpenAPI document")
    o.add_argument("--functions", default="functions")
    o.add_argument("--write", action="store_true")
    o.add_argument("--check", action="store_true")
    o.set_defaults(func=_openapi)
    video_cli.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = parser().parse_args(argv)
    if getattr(args, "func", None) is _set_rate_limit and not args.clear and args.limit is None:
        raise SystemExit("give a limit, or --clear")
    try:
        args.func(args)
    except VerrifloError as exc:
        print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
