"""API Gateway REQUEST authorizer: `VF-ORG-ID` key or dashboard JWT -> org context, else 401.

The decision itself is `verriflo.auth.authenticate`, the same code the functions run when no
authorizer context reached them, so auth is identical on AWS, on LocalStack and in-process.
The IAM policy is built here rather than with Powertools' authorizer data classes: importing those
loads every event class Powertools knows (~40 ms of cold start) for a three-line document.
"""

from __future__ import annotations

from typing import Any

from verriflo.auth import authenticate
from verriflo.errors import Unauthorized
from verriflo.observability import logger


def _allow_whole_api(method_arn: str, principal: str, context: dict[str, str]) -> dict[str, Any]:
    # methodArn = arn:aws:execute-api:<region>:<account>:<apiId>/<stage>/<verb>/<path>. Allowing every
    # route of the stage lets API Gateway reuse the answer if caching is turned on later.
    arn, _, rest = method_arn.partition("/")
    stage = rest.split("/", 1)[0] or "*"
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": f"{arn}/{stage}/*/*"}
            ],
        },
        "context": context,
    }


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
    return _allow_whole_api(event["methodArn"], org.principal, org.to_authorizer_context())
