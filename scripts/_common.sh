# Shared by scripts/demo.sh and scripts/test.sh: a virtualenv from pyproject.toml, and Redis.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RECO_VENV:-$ROOT/.venv}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"  # implicit runs its own threads

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

ensure_venv() {  # $1: pip extras, e.g. "test"
  local extras="$1" stamp
  stamp="$VENV/.installed-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)-$extras"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV"
    python3 -m venv "$VENV"
  fi
  if [ ! -f "$stamp" ]; then
    log "installing the project and its dependencies (pyproject.toml, extras: $extras; ~1 min)"
    local pip_log="$VENV/pip-install.log"
    if ! { "$VENV/bin/python" -m pip install --upgrade pip \
           && "$VENV/bin/python" -m pip install -e "$ROOT[$extras]"; } >"$pip_log" 2>&1; then
      tail -20 "$pip_log" >&2
      echo "error: installing dependencies failed; full log in $pip_log" >&2
      exit 1
    fi
    rm -f "$VENV"/.installed-*
    touch "$stamp"
  fi
}

redis_host_port() {  # from RECO_REDIS_URL (default redis://127.0.0.1:6379/0)
  local url="${RECO_REDIS_URL:-redis://127.0.0.1:6379/0}" hp
  hp="${url#*://}"; hp="${hp#*@}"; hp="${hp%%/*}"
  REDIS_HOST="${hp%%:*}"; REDIS_PORT="${hp##*:}"
  [ "$REDIS_PORT" = "$hp" ] && REDIS_PORT=6379
  return 0
}

redis_up() {
  "$VENV/bin/python" - "$REDIS_HOST" "$REDIS_PORT" <<'PY' >/dev/null 2>&1
import sys, redis
redis.Redis(host=sys.argv[1], port=int(sys.argv[2]), socket_connect_timeout=1).ping()
PY
}

ensure_redis() {
  redis_host_port
  if redis_up; then return 0; fi
  case "$REDIS_HOST" in 127.0.0.1|localhost) ;; *)
    echo "error: Redis at $REDIS_HOST:$REDIS_PORT does not answer (RECO_REDIS_URL)." >&2; exit 1;;
  esac
  if command -v redis-server >/dev/null 2>&1; then
    log "starting a local redis-server on port $REDIS_PORT (no persistence)"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" \
      --appendonly no --dir /tmp --logfile /tmp/reco-redis.log
    for _ in $(seq 1 50); do redis_up && return 0; sleep 0.1; done
    echo "error: redis-server started but does not answer; see /tmp/reco-redis.log" >&2; exit 1
  fi
  echo "error: no Redis at $REDIS_HOST:$REDIS_PORT and redis-server is not installed;" \
       "run 'docker compose up -d redis' or install it (e.g. 'apt-get install redis-server')." >&2
  exit 1
}
