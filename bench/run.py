"""Run every benchmark script in bench/ (bench_*.py), each in its own process, and print their reports.

`python bench/run.py NAME ...` runs only those (e.g. `ai billing`); the soak (about 45 minutes on
two cores) and its Step Functions accounting (a stack of its own) run only when named:
`python bench/run.py soak localstack_sfn`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ONLY_WHEN_NAMED = {"soak", "localstack_sfn"}


def main(argv: list[str]) -> int:
    wanted = set(argv)
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        name = script.stem.removeprefix("bench_")
        if (wanted and name not in wanted) or (not wanted and name in ONLY_WHEN_NAMED):
            continue
        print(f"\n### {script.name}", flush=True)
        if subprocess.run([sys.executable, str(script)], cwd=HERE.parent).returncode != 0:
            failed.append(script.name)
    if failed:
        print("benchmarks that did not finish: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
