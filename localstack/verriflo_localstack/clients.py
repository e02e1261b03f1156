"""Let LocalStack reuse its own boto3 clients for assumed roles, so its memory stays flat.

LocalStack's services call each other through boto3 clients from `localstack.aws.connect`
(`connect_to`), cached by `ClientFactory._get_client`, an `lru_cache(maxsize=256)` keyed by every
argument, the credentials and the botocore `Config` among them. Two things defeat that cache on the
paths our stack runs all day:

- `with_assumed_role` asks STS for fresh temporary credentials on every call. Step Functions calls
  it for every task state (`services/stepfunctions/asl/utils/boto_client.py`), and so do SNS
  deliveries, Lambda destinations and dead-letter queues. New credentials are a new cache key, and
  moto's STS keeps every session it ever issued (an `AssumedRole` in a list that is searched
  linearly, and an access key in IAM), without end.
- `Config` compares by identity, and `get_client` merges the caller's config into the factory's
  (`Config.merge` returns a new object) whenever a caller passes one, as Step Functions always
  does. That key never matches either.

So every task state built a new boto3 client (256 of them kept by the cache), and moto's STS grew
by a session. In the soak (bench/bench_soak.py) LocalStack grew 147 MB without this and 75 MB with
it, the difference in the first half, while the cache filled: some 270 kB a client.

The fix, installed with our executor plugin:
- `with_assumed_role` reuses the credentials it got for the same role, service principal, session
  name, region and endpoint until five minutes before they expire (LocalStack itself does not
  expire them; AWS does, after an hour by default);
- `_get_client` is given one `Config` object per set of options (the options a caller set, compared
  by value), so equal configs share the cache entry.

Clients were already shared between callers with equal arguments (the cache's docstring says so),
and no caller on these paths changes the client it gets. Not done by editing site-packages:
LocalStack's venv is rebuilt from its pinned version.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
from typing import Any

from botocore.config import Config
from localstack.aws import connect

LOG = logging.getLogger(__name__)

RENEW_BEFORE = dt.timedelta(minutes=5)  # fresh credentials this long before the old ones expire
MAX_CONFIGS = 64  # distinct option sets kept; past that a config passes through as before

_installed = threading.Lock()
_lock = threading.Lock()
_credentials: dict[tuple, dict[str, Any]] = {}
_configs: dict[str, Config] = {}


def _fresh(credentials: dict[str, Any], now: dt.datetime) -> bool:
    expires = credentials.get("Expiration")
    if not isinstance(expires, dt.datetime):
        return False
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=dt.UTC)
    return now < expires - RENEW_BEFORE


def canonical_config(config: Config | None) -> Config | None:
    """One `Config` object per set of user-provided options, so the client cache can match it."""
    if config is None:
        return None
    try:
        options = config._user_provided_options  # noqa: SLF001 - botocore's record of what was set
        fingerprint = repr(sorted(options.items()))
    except Exception:  # noqa: BLE001 - an unusual config is passed through, as before the patch
        return config
    with _lock:
        known = _configs.get(fingerprint)
        if known is not None:
            return known
        if len(_configs) < MAX_CONFIGS:
            _configs[fingerprint] = config
    return config


def assumed_credentials(
    factory: connect.ClientFactory,
    *,
    role_arn: str,
    service_principal: Any,
    session_name: str | None,
    region_name: str | None,
    endpoint_url: str | None,
    config: Config | None,
) -> dict[str, Any]:
    """Temporary credentials for the role: the ones issued before while they are fresh, else new."""
    key = (type(factory), role_arn, str(service_principal or ""), session_name, region_name, endpoint_url)
    now = dt.datetime.now(dt.UTC)
    with _lock:
        cached = _credentials.get(key)
    if cached is not None and _fresh(cached, now):
        return cached
    metadata = {"service_principal": service_principal} if service_principal else {}
    sts = factory(endpoint_url=endpoint_url, config=config, region_name=region_name).sts
    sts = sts.request_metadata(**metadata)
    issued = sts.assume_role(
        RoleArn=role_arn, RoleSessionName=session_name or f"session-{connect.short_uid()}"
    )["Credentials"]
    with _lock:
        _credentials[key] = issued
    return issued


def install() -> None:
    """Patch `ClientFactory.with_assumed_role` and `_get_client`; idempotent."""
    with _installed:
        factory_class = connect.ClientFactory
        if getattr(factory_class.with_assumed_role, "__verriflo_reusing__", False):
            return

        def with_assumed_role(
            self,
            *,
            role_arn: str,
            service_principal=None,
            session_name: str | None = None,
            region_name: str | None = None,
            endpoint_url: str | None = None,
            config: Config | None = None,
        ):
            credentials = assumed_credentials(
                self,
                role_arn=role_arn,
                service_principal=service_principal,
                session_name=session_name,
                region_name=region_name,
                endpoint_url=endpoint_url,
                config=config,
            )
            return self(
                region_name=region_name,
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                endpoint_url=endpoint_url,
                config=config,
            )

        original_get_client = factory_class._get_client  # noqa: SLF001 - the lru_cache'd builder

        @functools.wraps(original_get_client)
        def _get_client(self, *args, config: Config, **kwargs):
            return original_get_client(self, *args, config=canonical_config(config), **kwargs)

        with_assumed_role.__doc__ = factory_class.with_assumed_role.__doc__
        with_assumed_role.__verriflo_reusing__ = True
        factory_class.with_assumed_role = with_assumed_role
        factory_class._get_client = _get_client  # noqa: SLF001
        LOG.debug("LocalStack reuses assumed-role credentials and equal client configs")
