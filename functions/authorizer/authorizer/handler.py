"""API Gateway REQUEST authorizer: `VF-ORG-ID` key or dashboard JWT -> org context, else 401.

The decision itself is `verriflo.auth.authenticate`, the same code the functions run when no
authorizer context reached them, so auth is identical on AWS, on LocalStack and in-process.
The policy document is `authorizer.logic`.
"""

from __future__ import annotations

from typing import Any

from verriflo.auth import authenticate
from verriflo.errors import Unauthorized
from verriflo.observability import logger

from authorizer import logic


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Allow the whole API for a known org, or deny with 401."""
    try:
        org = authenticate(event.get("headers"))
    except Unauthorized as exc:
        logger.info("authorizer.rejected", extra={"reason": exc.message})
        # API Gateway turns exactly this message into a 401 (gateway response UNAUTHORIZED).
        raise Exception("Unauthorized") from None  # noqa: TRY002 - the platform's contract
    logger.append_keys(org_id=org.org_id)
    logger.info("authorizer.allowed", extra={"via": org.via})
    return logic.allow_whole_api(event["methodArn"], org.principal, org.to_authorizer_context())
