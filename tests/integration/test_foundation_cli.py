"""The operators' tool end to end against the real database: orgs, keys, limits, credits, users."""

from __future__ import annotations

import io
import json

from verriflo import auth, ledger, orgs
from verriflo_tools import cli


def _run(capsys, *argv: str) -> dict:
    assert cli.main(["--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_an_operator_sets_up_an_org_from_nothing(capsys, monkeypatch, stores):
    created = _run(capsys, "org", "create", "Lakeside School", "--credits", "250")
    org_id, key = created["orgId"], created["apiKey"]
    assert auth.authenticate({"VF-ORG-ID": key}).org_id == org_id
    assert ledger.balance_milli(org_id) == 250_000

    second = _run(capsys, "key", "issue", org_id, "--name", "backend")
    assert second["apiKey"].startswith(second["prefix"])
    listed = _run(capsys, "key", "list", org_id)
    assert len(listed["keys"]) == 2 and all("hash" not in k for k in listed["keys"])
    _run(capsys, "key", "revoke", org_id, second["keyId"])
    assert orgs.find_active_key(second["apiKey"]) is None

    limits = _run(capsys, "org", "set-rate-limit", org_id, "rooms", "30", "--window", "10")
    assert limits["rateLimits"]["rooms"] == {"limit": 30, "window": 10}

    grant = _run(capsys, "credits", "add", org_id, "100", "--grant-id", "invoice-7", "--expires-days", "30")
    again = _run(capsys, "credits", "add", org_id, "100", "--grant-id", "invoice-7")
    assert grant["balance"] == 350 and again["duplicate"] is True and ledger.balance_milli(org_id) == 350_000

    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    user = _run(
        capsys, "user", "create", org_id, "Head@Lakeside.example", "--role", "admin", "--password-stdin"
    )
    assert user["email"] == "head@lakeside.example"
    token, _, _ = auth.login("head@lakeside.example", "a long enough password")
    assert auth.authenticate({"Authorization": f"Bearer {token}"}).role == "admin"


def test_seed_demo_prints_a_working_key(capsys, stores):
    seeded = _run(capsys, "seed-demo")
    assert auth.authenticate({"VF-ORG-ID": seeded["apiKey"]}).org_id == seeded["orgId"]
    assert ledger.balance_milli(seeded["orgId"]) == 10_000_000
    # two dashboard logins with passwords made for this org: the owner, and a viewer who only reads
    for role in ("owner", "viewer"):
        email, password = seeded[f"{role}Email"], seeded[f"{role}Password"]
        assert len(password) >= 12
        token, _, user = auth.login(email, password)
        assert (user.org_id, user.role) == (seeded["orgId"], role)
        assert auth.authenticate({"Authorization": f"Bearer {token}"}).role == role
    again = _run(capsys, "seed-demo")
    assert again["ownerPassword"] != seeded["ownerPassword"]  # generated each time, never a fixed default


def test_errors_are_reported_without_a_traceback(capsys, stores):
    assert cli.main(["key", "issue", "org_does_not_exist"]) == 1
    assert "not found" in capsys.readouterr().err.lower()
