#!/usr/bin/env bash
# Feast's own feature server over this repository (compose profile "feature-server"): other
# teams read the same online features over HTTP, e.g. POST /get-online-features with
# {"feature_service": "serving_realtime_v1", "entities": {"user_id": ["196"]}}.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
eval "$(reco feast-env)"
cd "${RECO_FEATURE_REPO:-feature_repo}"
exec feast serve --host "${RECO_FEATURE_SERVER_HOST:-0.0.0.0}" \
  --port "${RECO_FEATURE_SERVER_PORT:-6566}" --no-access-log
