"""Health answer models."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from datetime import datetime
from typing import Literal

from verriflo.models import ApiModel


class Liveness(ApiModel):
    status: Literal["ok"] = "ok"
    time: datetime


class Check(ApiModel):
    name: str
    status: Literal["up", "down"]
    latency_ms: float
    error: str | None = None


class Readiness(ApiModel):
    ready: bool
    checks: list[Check]
