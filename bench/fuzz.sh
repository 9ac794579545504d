#!/usr/bin/env bash
# A long schemathesis run over every route (CI runs 25 examples per operation; this runs more).
# Usage: bench/fuzz.sh [examples per operation, default 500]
set -euo pipefail
cd "$(dirname "$0")/.."
RECO_FUZZ_EXAMPLES="${1:-500}" exec ./scripts/test.sh tests/api/test_schema_fuzz.py -q
