"""LocalStack stays flat under requests: a few hundred API requests add no memory maps or threads.

LocalStack kept one finished thread, and so its 8 MB stack and guard page, per Lambda invocation
(fixed by localstack/verriflo_localstack/threads.py): ~4 maps per API request, dead at the kernel's
map limit after ~15,000 requests. 400 requests would add ~1,600 maps with that leak back; the
bound below leaves room for caches and connection pools. The 30,000-request soak with uploads,
webhooks and rooms is bench/bench_soak.py.
"""

from __future__ import annotations

import httpx
import pytest
from proc_support import stack_figures

pytestmark = pytest.mark.e2e

KEY = "VF-ORG-ID"
REQUESTS = 400
MAX_NEW_MAPS = 150
MAX_NEW_THREADS = 8


def _requests(http: httpx.Client, api_url: str, key: str, count: int) -> list[int]:
    """`count` requests across three functions (two of them behind the authorizer); their statuses."""
    paths = ("/v1/auth/whoami", "/v1/billing/balance", "/v1/health")
    return [http.get(api_url + paths[i % len(paths)], headers={KEY: key}).status_code for i in range(count)]


def test_localstack_keeps_no_memory_maps_or_threads_per_request(
    http: httpx.Client, api_url: str, demo_key: str, e2e_stack: dict[str, str]
) -> None:
    assert set(_requests(http, api_url, demo_key, 30)) == {200}  # every function warm first
    before = stack_figures(e2e_stack["STACK"])["localstack"]

    statuses = _requests(http, api_url, demo_key, REQUESTS)

    after = stack_figures(e2e_stack["STACK"])["localstack"]
    assert set(statuses) == {200}
    assert after.maps - before.maps < MAX_NEW_MAPS, (before, after)
    assert after.threads - before.threads < MAX_NEW_THREADS, (before, after)
