"""What `from __future__ import annotations` costs in a function package, measured both ways.

1. Per request, in a route module: Powertools resolves a route's `Depends()` parameters (`org: Org`)
   with `typing.get_type_hints(route)` on every request; string annotations (what the future import
   makes of every annotation) are compiled and evaluated again each time. The same route, compiled
   from the same source with and without the import, behind `verriflo.api.create_app()`, answers
   warm requests in-process (the org comes from a dependency override: no stores needed).
2. Once per cold start, in a models module: pydantic evaluates string annotations when it creates
   each model class. `functions/cdn/cdn/models.py` is executed with and without the import.

The repository's answer (pyproject: ruff's `FA`/`required-imports` rules) follows these figures.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import sys
import types
from functools import partial

from support import ROOT, Report, Result, percentile, time_calls

FUTURE = "from __future__ import annotations\n"
ROUTE = """
from verriflo.api import Envelope, Org, ok

from identity.models import LoginRequest, WhoAmI


def route(body: LoginRequest, org: Org) -> Envelope[WhoAmI]:
    return ok(WhoAmI(org_id=org.org_id, org_name=org.org_name, plan=org.plan, via=org.via,
                     principal=org.principal, role=org.role))
"""


def _module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)  # noqa: S102 - our own source, both ways
    return module


def _handler(future: bool):
    """A Lambda handler whose one route is compiled with or without the future import."""
    from support import _tests_support
    from verriflo.api import create_app, current_org, lambda_handler
    from verriflo.auth import OrgContext

    tests = _tests_support()
    module = _module(f"bench_route_{'future' if future else 'plain'}", (FUTURE if future else "") + ROUTE)
    app = create_app()
    # The login path is public in the access table, so admission asks for no credentials here.
    app.post("/v1/auth/login")(module.route)
    org = OrgContext(
        org_id="org_bench", org_name="Bench", plan="prepaid", via="key", principal="key_bench", role="api"
    )
    app.dependency_overrides[current_org] = lambda: org
    handler = lambda_handler(app)
    event = tests.api_event("identity/login.json", body={"email": "a@example.com", "password": "pw"})
    context = tests.LambdaContext()

    def call() -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # the metrics' EMF lines
            reply = handler(json.loads(json.dumps(event)), context)
        assert reply["statusCode"] == 200, reply["body"]

    return call


def _models(future: bool, source: str, counter: itertools.count) -> None:
    _module(f"bench_models_{next(counter)}", (FUTURE if future else "") + source)


def main() -> None:
    from aws_lambda_powertools.event_handler.depends import build_dependency_tree

    report = Report("from __future__ import annotations: per request and per cold start")
    handlers = {future: _handler(future) for future in (False, True)}
    routes = {f: sys.modules[f"bench_route_{'future' if f else 'plain'}"].route for f in handlers}
    source = (ROOT / "functions/cdn/cdn/models.py").read_text().replace(FUTURE, "")
    counter = itertools.count()
    request: dict[bool, list[float]] = {False: [], True: []}
    hints: dict[bool, list[float]] = {False: [], True: []}
    models: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(10):  # interleaved rounds: drift on a shared machine hits both sides alike
        for future in (False, True):
            request[future] += time_calls(handlers[future], 400, warmup=50)
            hints[future] += time_calls(partial(build_dependency_tree, routes[future]), 2000, warmup=50)
            models[future] += time_calls(partial(_models, future, source, counter), 40, warmup=5)
    for label, samples, unit_scale in (
        ("warm request through create_app()", request, 1),
        ("Powertools' per-request dependency resolution", hints, 1000),
        ("cdn models module created (cold start share)", models, 1),
    ):
        plain, future = (percentile(samples[f], 50) * unit_scale for f in (False, True))
        low_plain, low_future = (min(samples[f]) * unit_scale for f in (False, True))
        unit = "ms" if unit_scale == 1 else "us"
        report.add(
            Result(f"{label}, without (p50)", plain, unit, note=f"min {low_plain:.3f}"),
            Result(f"{label}, with (p50)", future, unit, baseline=plain, note=f"min {low_future:.3f}"),
        )
    report.print()


if __name__ == "__main__":
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    main()
