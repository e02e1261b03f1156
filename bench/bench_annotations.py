"""What `from __future__ import annotations` costs in a function package, measured both ways.

1. Per request, in a route module: Powertools resolves a route's `Depends()` parameters (`org: Org`)
   with `typing.get_type_hints(route)` on every request; string annotations (what the future import
   makes of every annotation) are compiled and evaluated again each time. The same route, compiled
   from the same source with and without the import, behind `verriflo.api.create_app()`, answers
   warm requests in-process (the org comes from a dependency override: no stores needed).
2. Once per cold start, in a models module: pydantic evaluates string annotations when it creates
   each model class. `functions/rooms/rooms/models.py` (28 models) and `functions/cdn/cdn/models.py`
   (12) are executed (compiled beforehand) with and without the import.

The repository's answer follows these figures (pyproject, [tool.ruff.lint]: the import is banned
where annotations are evaluated at run time, required everywhere else).
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


def _compile(source: str, filename: str) -> types.CodeType:
    # dont_inherit: this file's own `from __future__ import annotations` must not leak into both sides.
    return compile(source, filename, "exec", dont_inherit=True)


def _module(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(_compile(source, f"<{name}>"), module.__dict__)  # noqa: S102 - our own source, both ways
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


def _models(code: types.CodeType, counter: itertools.count) -> None:
    module = types.ModuleType(f"bench_models_{next(counter)}")
    sys.modules[module.__name__] = module  # pydantic resolves string annotations in the module
    exec(code, module.__dict__)  # noqa: S102 - our own source, both ways


def main() -> None:
    from aws_lambda_powertools.event_handler.depends import build_dependency_tree

    report = Report("from __future__ import annotations: per request and per cold start")
    handlers = {future: _handler(future) for future in (False, True)}
    routes = {f: sys.modules[f"bench_route_{'future' if f else 'plain'}"].route for f in handlers}
    counter = itertools.count()
    request: dict[bool, list[float]] = {False: [], True: []}
    hints: dict[bool, list[float]] = {False: [], True: []}
    models = {name: {False: [], True: []} for name in ("rooms", "cdn")}
    codes = {}
    for name in models:
        path = ROOT / f"functions/{name}/{name}/models.py"
        plain = path.read_text().replace(FUTURE, "")
        codes[name] = {f: _compile((FUTURE if f else "") + plain, str(path)) for f in (False, True)}
    for round_ in range(10):  # interleaved rounds, alternating order: drift hits both sides alike
        for future in (False, True) if round_ % 2 else (True, False):
            request[future] += time_calls(handlers[future], 400, warmup=50)
            hints[future] += time_calls(partial(build_dependency_tree, routes[future]), 2000, warmup=50)
            for name in models:
                create = partial(_models, codes[name][future], counter)
                models[name][future] += time_calls(create, 30, warmup=3)
    for label, samples, unit_scale in (
        ("warm request through create_app()", request, 1),
        ("Powertools' per-request dependency resolution", hints, 1000),
        ("rooms models module created (28 models)", models["rooms"], 1),
        ("cdn models module created (12 models)", models["cdn"], 1),
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
