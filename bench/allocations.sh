#!/usr/bin/env bash
# Heap allocations per proxied request in the built-in router, counted exactly by
# valgrind: the example router (one thread) runs under valgrind twice, serving SMALL and
# then LARGE requests from curl on one keep-alive connection to an nginx backend; the
# difference in "total heap usage" between the runs, over the difference in requests, is
# what one request costs (start-up and shutdown cancel out).
#
# Environment (defaults in brackets): SMALL [200], LARGE [1200], BASE_PORT [28200],
# ROUTER_BIN [built with cargo: release example `router`].
# Needs: valgrind, nginx, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

SMALL=${SMALL:-200}
LARGE=${LARGE:-1200}
BASE_PORT=${BASE_PORT:-28200}
for tool in valgrind nginx curl; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
    echo "bench/allocations.sh: $tool is missing" >&2
    exit 1
  }
done
PATH="$PATH:/usr/sbin"

if [ -z "${ROUTER_BIN:-}" ]; then
  cargo build --release --locked -p proxy --example router >&2
  ROUTER_BIN="${CARGO_TARGET_DIR:-target}/release/examples/router"
fi

BACKEND_PORT=$BASE_PORT
ROUTER_PORT=$((BASE_PORT + 1))
work=$(mktemp -d)
nginx_pid=""
cleanup() {
  [ -z "$nginx_pid" ] || kill "$nginx_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 64; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$BACKEND_PORT; location / { default_type application/json; return 200 '{"status":"ok"}'; } }
}
EOF
nginx -c "$work/nginx.conf" -p "$work" &
nginx_pid=$!

# Prints the allocations valgrind counted for a router that served $1 requests.
allocations_for() {
  local requests=$1 log="$work/valgrind.$1" router_pid
  valgrind --log-file="$log" "$ROUTER_BIN" --listen "127.0.0.1:$ROUTER_PORT" --threads 1 \
    --no-health-check --group "stable=127.0.0.1:$BACKEND_PORT" >/dev/null 2>&1 &
  router_pid=$!
  for _ in $(seq 300); do
    curl -fsS -o /dev/null "http://127.0.0.1:$ROUTER_PORT/" 2>/dev/null && break
    sleep 0.1
  done
  # curl's URL globbing sends them all on one kept-alive connection; the probe above
  # counts as one more request in both runs and cancels out.
  curl -fsS -o /dev/null "http://127.0.0.1:$ROUTER_PORT/[1-$requests]"
  kill -INT "$router_pid"
  wait "$router_pid" || true
  awk '/total heap usage:/ { gsub(/,/, ""); print $5 }' "$log"
}

small=$(allocations_for "$SMALL")
large=$(allocations_for "$LARGE")
awk -v s="$small" -v l="$large" -v ns="$SMALL" -v nl="$LARGE" 'BEGIN {
  printf "heap allocations: %d for %d requests, %d for %d requests: %.2f per request\n", s, ns, l, nl, (l - s) / (nl - ns) }'
echo "Reproduce: SMALL=$SMALL LARGE=$LARGE bench/allocations.sh"
