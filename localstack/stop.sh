#!/usr/bin/env bash
# Stop a stack's LocalStack by its recorded pid: SIGTERM, up to 10 s, then SIGKILL.
# Usage: localstack/stop.sh [stack]
set -euo pipefail
cd "$(dirname "$0")/.."
exec "$(command -v python3 || command -v python)" scripts/stack.py localstack-stop --stack "${1:-dev}"
