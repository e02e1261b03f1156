"""The base of every request and response model: snake_case in Python, camelCase on the wire."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Accepts and emits camelCase (`roomId`), as API.md's fields are, while code uses snake_case."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True, defer_build=True
    )


class StrictApiModel(ApiModel):
    """A request model that rejects unknown fields, so typos fail loudly instead of being ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
        defer_build=True,
    )
