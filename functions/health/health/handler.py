"""Health and discovery routes: liveness, readiness of every dependency, the OpenAPI document."""

# No `from __future__ import annotations` here: Powertools resolves each route's dependencies with
# typing.get_type_hints on every request, and string annotations are re-compiled each time.
from typing import Any

from aws_lambda_powertools.event_handler import Response
from verriflo.api import PUBLIC, Envelope, create_app, lambda_handler, ok, responses

from health import logic, models

app = create_app()


@app.get(
    "/v1/health",
    summary="Liveness",
    tags=["health"],
    responses=responses(models.Liveness),
    openapi_extensions=PUBLIC,
)
def liveness() -> Envelope[models.Liveness]:
    """The function answers: nothing else is checked."""
    return ok(logic.liveness())


@app.get(
    "/v1/health/ready",
    summary="Readiness of every dependency",
    tags=["health"],
    responses=responses(models.Readiness, 503),
    openapi_extensions=PUBLIC,
)
def readiness() -> Envelope[models.Readiness]:
    """Every dependency (MongoDB, Redis, S3, EventBridge, LiveKit, Secrets Manager, SQS, Step
    Functions) with status and latency; 503 error envelope naming those down, checks in `details`."""
    return ok(logic.readiness())


@app.get(
    "/v1/openapi.json",
    summary="The OpenAPI document of the whole API",
    tags=["health"],
    include_in_schema=False,
)
def openapi_document() -> Response[Any]:
    """The merged OpenAPI document (built from every function's routes at build time)."""
    return Response(status_code=200, content_type="application/json", body=logic.openapi_document())


handler = lambda_handler(app)
