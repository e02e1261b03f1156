"""Run with LocalStack's Python (.venv-localstack): what LocalStack's client factory does for repeated
assumed-role clients, with and without localstack/verriflo_localstack/clients.py installed.

STS is answered in the factory's boto3 session (nothing listens here), and every AssumeRole
LocalStack would send is counted. Prints one JSON object; see
tests/unit/test_localstack_clients.py for what must hold.
"""

from __future__ import annotations

import datetime as dt
import json
import sys

from botocore.awsrequest import AWSResponse
from botocore.config import Config
from localstack.aws.connect import InternalClientFactory, ServicePrincipal

ROLE = "arn:aws:iam::000000000000:role/summary-state-machine"
OTHER_ROLE = "arn:aws:iam::000000000000:role/other"
CALLS = 20


def answer_sts(factory: InternalClientFactory, expires_in: dt.timedelta) -> list[int]:
    """Every STS client the factory builds from now on answers AssumeRole here, counting the calls
    (a `before-call` handler with an answer skips the HTTP request, as botocore's Stubber does)."""
    issued = [0]

    def assume_role(**_):
        issued[0] += 1
        n = issued[0]
        credentials = {
            "AccessKeyId": f"ASIA{n:016d}",
            "SecretAccessKey": f"secret-{n}",
            "SessionToken": f"token-{n}",
            "Expiration": dt.datetime.now(dt.UTC) + expires_in,
        }
        return AWSResponse("http://sts.test/", 200, {}, None), {"Credentials": credentials}

    factory._session.events.register("before-call.sts.AssumeRole", assume_role)  # noqa: SLF001
    return issued


def run(expires_in: dt.timedelta) -> dict[str, object]:
    factory = InternalClientFactory()
    issued = answer_sts(factory, expires_in)
    config = Config(parameter_validation=False, retries={"total_max_attempts": 1})  # as Step Functions
    clients = []
    for _ in range(CALLS):
        made = factory.with_assumed_role(
            role_arn=ROLE, service_principal=ServicePrincipal.states, region_name="us-east-1", config=config
        )
        clients.append(made.get_client("lambda")._client)
    other = factory.with_assumed_role(role_arn=OTHER_ROLE, region_name="us-east-1", config=config)
    other_client = other.get_client("lambda")._client
    return {
        "assume_role_calls": issued[0],
        "distinct_clients": len({id(c) for c in clients}),
        "other_role_shares": any(other_client is c for c in clients),
        "other_role_key": other_client._request_signer._credentials.access_key,  # noqa: SLF001
        "first_key": clients[0]._request_signer._credentials.access_key,  # noqa: SLF001
    }


def main() -> None:
    if "--patched" in sys.argv:
        from verriflo_localstack import clients

        clients.install()
        clients.install()  # idempotent
    expiring = dt.timedelta(minutes=2) if "--expiring" in sys.argv else dt.timedelta(hours=1)
    print(json.dumps(run(expiring)))


if __name__ == "__main__":
    main()
