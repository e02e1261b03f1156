"""Foundation benchmarks: cold start of every function, and the warm overhead of our HTTP layer.

1. Cold start: each function exactly as `sam build` packages it for Lambda (its code folder and its
   layers, the runtime's boto3, nothing written back since /opt and /var/task are read-only). A
   fresh interpreter (the python3.13 Lambda uses) loads the runtime's bootstrap (awslambdaric), as
   Lambda has before it imports a handler, then imports the handler module; import + init is timed
   inside that process, median of 5. Baseline in the same run: the same artifact without its
   precompiled bytecode (what SAM's default Python build ships). Target: at most 200 ms.
2. Warm request: auth + middleware + rate limit + a route doing one MongoDB read, in-process through
   the Lambda handler, beside the bare pymongo read plus the same Redis rate-limit script call.
   Target: our own overhead at most 2 ms at p50.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import yaml
from support import ROOT, Report, Result, local_stores, percentile, time_calls

COLD_RUNS = 5
# a bare python3.13 as in Lambda's runtime, not the dev venv with every package installed
INTERPRETER = str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}")
WARM_CALLS = 2000
LAMBDA_LIMIT = 262_144_000  # bytes: Lambda's 250 MB for a function's code and layers, unzipped


_TIMED_IMPORT = """
{runtime}
import time
start = time.perf_counter()
{statement}
print((time.perf_counter() - start) * 1000)
"""
# Lambda's python3.13 runtime has loaded its runtime interface client (awslambdaric) when it imports
# the handler: the handler's import + init starts from there.
RUNTIME_BOOTSTRAP = "import awslambdaric.bootstrap"


@dataclass
class Artifact:
    """One function as `sam build` leaves it: its code folder, its layers' folders, its handler."""

    name: str
    init: str  # the statement that imports and initialises its handler
    paths: list[Path]
    environment: dict[str, str]
    size: int  # unzipped bytes of its code and layers, as Lambda counts them
    local_only: bool  # deployed only on LocalStack (Condition: IsLocal), where no size limit applies


def _template_loader() -> type[yaml.SafeLoader]:
    class Loader(yaml.SafeLoader):
        pass

    # `!Ref Name` names a layer; other CloudFormation tags do not matter here.
    Loader.add_constructor("!Ref", lambda loader, node: loader.construct_scalar(node))
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return Loader


def _ref(value: object) -> str | None:
    """A layer's logical id from `!Ref Name` or `{Ref: Name}` (the built template writes the latter);
    of a stage's choice (`!If [IsLocal, local, aws]`) the one AWS ships."""
    if isinstance(value, dict) and "Fn::If" in value:
        return _ref(value["Fn::If"][2])
    if isinstance(value, dict):
        value = value.get("Ref")
    return value if isinstance(value, str) else None


def _bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


def _init_statement(code: Path, handler: str) -> str:
    """What Lambda runs before the first event: the handler module's import, or, for a streamed
    function behind the Lambda Web Adapter (`run.sh` starting uvicorn), uvicorn loading the ASGI app
    and its protocol classes before it listens."""
    if handler == "run.sh":
        app = re.search(r"(\S+:\w+)\s*$", (code / "run.sh").read_text()).group(1)
        return f"import uvicorn.main, uvicorn.config as c; c.Config({app!r}, lifespan='on').load()"
    return f"import {handler.rsplit('.', 1)[0]}"


def built_functions() -> list[Artifact]:
    """`sam build` of template.yaml (cached, as `make up` and a deploy to AWS do it), read back."""
    from verriflo_tools.stack import build, processes, state

    bench_stack = state.Stack("bench")
    bench_stack.ensure_dirs()
    build_root = ROOT / ".aws-sam" / "bench"
    build_dir = build.sam_build(bench_stack, build_root, build.sam_env(processes.base_env()))
    template = yaml.load((build_dir / "template.yaml").read_text(), Loader=_template_loader())  # noqa: S506
    globals_ = (template.get("Globals") or {}).get("Function", {})
    shared = globals_.get("Layers") or []
    # the template's literal settings (e.g. PYDANTIC_DISABLE_PLUGINS); references need a deployed stack
    variables = (globals_.get("Environment") or {}).get("Variables") or {}
    environment = {k: v for k, v in variables.items() if isinstance(v, str)}
    runtime = sorted((ROOT / ".venv-lambda-python3.13" / "lib").glob("python3.13/site-packages"))
    found = []
    for name, resource in sorted(template["Resources"].items()):
        props = resource.get("Properties") or {}
        if resource.get("Type") != "AWS::Serverless::Function" or not props.get("Handler"):
            continue
        names = [_ref(layer) for layer in [*shared, *(props.get("Layers") or [])]]
        layers = [build_dir / name / "python" for name in names if name]
        shipped = [build_dir / name, *[build_dir / n for n in names if n and (build_dir / n).is_dir()]]
        paths = [build_dir / name, *[p for p in layers if p.is_dir()], *runtime]
        init = _init_statement(build_dir / name, props["Handler"])
        local_only = resource.get("Condition") == "IsLocal"
        found.append(Artifact(name, init, paths, environment, sum(map(_bytes, shipped)), local_only))
    return found


def _start_once(
    statement: str,
    paths: list[Path],
    environment: dict[str, str] | None = None,
    *,
    bytecode: bool = True,
    runtime: str = RUNTIME_BOOTSTRAP,
) -> tuple[float, float]:
    """One fresh process: (import + init timed inside it, the whole process from spawn to exit).
    As on Lambda, nothing is written back (its /opt and /var/task are read-only): only the bytecode
    shipped in the artifact counts; `bytecode=False` ignores even that."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(environment or {})
    env.update(
        PYTHONPATH=":".join(str(p) for p in paths),
        PYTHONDONTWRITEBYTECODE="1",
        POWERTOOLS_TRACE_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
    )
    with tempfile.TemporaryDirectory() as empty:
        if not bytecode:
            env["PYTHONPYCACHEPREFIX"] = empty  # bytecode is looked for (and not found) only here
        code = _TIMED_IMPORT.format(runtime=runtime, statement=statement)
        start = time.perf_counter()
        out = subprocess.run([INTERPRETER, "-c", code], env=env, check=True, capture_output=True, text=True)
        return float(out.stdout.strip()), (time.perf_counter() - start) * 1000


def _median_of_runs(probes: dict[str, Callable[[], tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    """COLD_RUNS rounds, each running every probe once, so a noisy moment on this shared machine
    falls on all of them alike instead of on whichever ran then; the median per probe."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in probes}
    for _ in range(COLD_RUNS):
        for name, probe in probes.items():
            samples[name].append(probe())
    return {
        name: (statistics.median(s[0] for s in runs), statistics.median(s[1] for s in runs))
        for name, runs in samples.items()
    }


def cold_starts(report: Report) -> None:
    runtime = sorted((ROOT / ".venv-lambda-python3.13" / "lib").glob("python3.13/site-packages"))
    functions = built_functions()
    probes: dict[str, Callable[[], tuple[float, float]]] = {
        "bare": lambda: _start_once("pass", [], runtime=""),
        "bootstrap": lambda: _start_once(RUNTIME_BOOTSTRAP, runtime, runtime=""),
    }
    for fn in functions:
        probes[fn.name] = partial(_start_once, fn.init, fn.paths, fn.environment)
        probes[f"{fn.name} no bytecode"] = partial(
            _start_once, fn.init, fn.paths, fn.environment, bytecode=False
        )
    medians = _median_of_runs(probes)
    report.add(Result("interpreter start alone (python -c pass)", medians["bare"][1], "ms"))
    bootstrap = medians["bootstrap"][0]
    report.add(Result("Lambda runtime's own bootstrap (awslambdaric), before any handler", bootstrap, "ms"))
    for fn in functions:
        (init, whole), (uncompiled, _) = medians[fn.name], medians[f"{fn.name} no bytecode"]
        report.add(
            Result(
                f"cold start {fn.name}: import + init",
                init,
                "ms",
                baseline=uncompiled,
                target="<= 200 ms",
                ok=init <= 200,
                note=f"baseline: the same artifact without bytecode; whole process {whole:.0f} ms",
            )
        )
        report.add(
            Result(
                f"size {fn.name}: code + layers, unzipped",
                fn.size / 1e6,
                "MB",
                target=f"<= {LAMBDA_LIMIT / 1e6:.0f} MB",
                ok=None if fn.local_only else fn.size <= LAMBDA_LIMIT,
                note="LocalStack only: AWS runs this from a container image" if fn.local_only else "",
            )
        )


def warm_overhead(report: Report) -> None:
    with local_stores():
        os.environ.update(
            AWS_DEFAULT_REGION="us-east-1",
            POWERTOOLS_TRACE_DISABLED="true",
            POWERTOOLS_LOG_LEVEL="WARNING",
            RATE_LIMIT_DEFAULT="100000000",
        )
        from support_api import build_probe

        handler, event, context, org_id = build_probe()
        from verriflo import db, ratelimit
        from verriflo.auth import authenticate

        coll = db.collection("orgs")
        org = authenticate(event["headers"])

        def bare() -> None:
            coll.find_one({"_id": org_id})
            ratelimit.hit(org, "bench")

        def ours() -> None:
            result = handler(event, context)
            assert result["statusCode"] == 200, result

        # Interleave rounds so drift on a shared machine hits both sides alike.
        ours_samples: list[float] = []
        bare_samples: list[float] = []
        for _ in range(4):
            ours_samples += time_calls(ours, WARM_CALLS // 4, warmup=50)
            bare_samples += time_calls(bare, WARM_CALLS // 4, warmup=50)
    for q in (50, 99):
        o, b = percentile(ours_samples, q), percentile(bare_samples, q)
        report.add(Result(f"warm request p{q} (auth+middleware+1 read+rate limit)", o, "ms", baseline=b))
        report.add(
            Result(
                f"our overhead over bare calls at p{q}",
                o - b,
                "ms",
                target="<= 2 ms" if q == 50 else "",
                ok=(o - b) <= 2 if q == 50 else None,
            )
        )


def main() -> None:
    report = Report("foundation")
    cold_starts(report)
    warm_overhead(report)
    report.print()


if __name__ == "__main__":
    main()
