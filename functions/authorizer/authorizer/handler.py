"""API Gateway REQUEST authorizer: `VF-ORG-ID` key or dashboard JWT -> org context, else 401.

The decision itself is `verriflo.auth.authenticate`, the same code the functions run when no
authorizer context reached them, so auth is identical on AWS, on LocalStack and in-process.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)

from verriflo.auth import authenticate
from verriflo.errors import Unauthorized
from verriflo.observability import logger


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def handler(event: APIGatewayAuthorizerRequestEvent, context: Any) -> dict[str, Any]:
    """Allow the whole API for a known org (so API Gateway may cache per key), or deny with 401."""
    try:
        org = authenticate(event.headers)
    except Unauthorized as exc:
        logger.info("authorizer.rejected", extra={"reason": exc.message})
        # API Gateway turns exactly this message into a 401 (gateway response UNAUTHORIZED).
        raise Exception("Unauthorized") from None  # noqa: TRY002 - the platform's contract
    arn = event.parsed_arn
    policy = APIGatewayAuthorizerResponse(
        principal_id=org.principal, region=arn.region, aws_account_id=arn.aws_account_id,
        api_id=arn.api_id, stage=arn.stage, context=org.to_authorizer_context(),
    )
    policy.allow_all_routes()
    logger.append_keys(org_id=org.org_id)
    logger.info("authorizer.allowed", extra={"via": org.via})
    return policy.asdict()
