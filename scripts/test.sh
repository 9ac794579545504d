#!/usr/bin/env bash
# Command 2: run the test suite against real Redis and a real Feast repository.
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
cd "$ROOT"
ensure_venv test
ensure_redis
export RECO_TEST_REDIS_URL="${RECO_REDIS_URL:-redis://$REDIS_HOST:$REDIS_PORT/0}"
exec "$VENV/bin/python" -m pytest "$@"
