#!/usr/bin/env bash
# Command 1: set everything up, run the main job, then serve the API.
#   virtualenv -> Redis -> fetch ML-100K -> feast apply -> train -> nightly -> serve :8000
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
cd "$ROOT"
ensure_venv dev
ensure_redis
export PATH="$VENV/bin:$PATH"
"$ROOT/scripts/pipeline.sh"
log "serving on http://${RECO_HOST:-127.0.0.1}:${RECO_PORT:-8000}; try:"
log "  curl 'http://127.0.0.1:${RECO_PORT:-8000}/recommendations?user_id=196&k=10'"
exec reco serve
