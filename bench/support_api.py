"""A probe function for the warm-path benchmark: the real common HTTP layer with one route that
reads one MongoDB document, exactly the shape of a typical read route."""

from __future__ import annotations

import uuid
from typing import Any

from verriflo import db
from verriflo.api import Envelope, Org, create_app, lambda_handler, ok, protected
from verriflo.models import ApiModel


class OrgName(ApiModel):
    name: str


def build_probe() -> tuple[Any, dict[str, Any], Any, str]:
    """(handler, event, context, org id) for a GET route behind auth and the rate limiter."""
    from support import LambdaContext
    from verriflo import access, orgs

    # the probe's route is the benchmark's own: it gets an access rule as every route of ours has one
    access.ROUTES[("GET", "/v1/bench/org")] = access.Action.READ
    app = create_app()
    api = protected(app, "bench")

    @api.get("/v1/bench/org")
    def read_org(org: Org) -> Envelope[OrgName]:
        doc = db.collection("orgs").find_one({"_id": org.org_id}, {"name": 1})
        return ok(OrgName(name=doc["name"]))

    org = orgs.create_org("Bench School")
    key = orgs.issue_key(org.id, "bench").secret
    event = {
        "resource": "/v1/bench/org",
        "path": "/v1/bench/org",
        "httpMethod": "GET",
        "headers": {"VF-ORG-ID": key},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "pathParameters": None,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": "local",
            "identity": {"sourceIp": "127.0.0.1"},
        },
    }
    return lambda_handler(app), event, LambdaContext(function_name="bench"), org.id
