#!/usr/bin/env bash
# Start LocalStack alone on the host for a stack (default "dev"): its own venv, our executor and
# extension, loopback only, state under .local/<stack>/localstack. Waits for /_localstack/health.
# Usage: localstack/start.sh [stack]      (`make up` starts MongoDB, Redis and deploys as well)
set -euo pipefail
cd "$(dirname "$0")/.."
exec "$(command -v python3 || command -v python)" scripts/stack.py localstack-start --stack "${1:-dev}"
