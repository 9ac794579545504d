#!/usr/bin/env bash
# Command 2: the checkers (ruff, mypy), then the test suite against real Redis and a real
# Feast repository.
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
cd "$ROOT"
ensure_venv test
ensure_redis
log "ruff (lint + format check) and mypy"
"$VENV/bin/ruff" check recommender jobs api bench tests feature_repo
"$VENV/bin/ruff" format --check recommender jobs api bench tests feature_repo
"$VENV/bin/mypy" recommender jobs api
export RECO_TEST_REDIS_URL="${RECO_REDIS_URL:-redis://$REDIS_HOST:$REDIS_PORT/0}"
exec "$VENV/bin/python" -m pytest "$@"
