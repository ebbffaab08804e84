#!/usr/bin/env bash
# The built-in router against HAProxy and nginx on the same 95/5 split, and against a
# direct connection to the backend: same wrk run for each, each proxy pinned to one core.
#
# Two backends (nginx, one worker, `return 200` of a small JSON body, stable and canary)
# and wrk share LOAD_CORE; the proxy under test runs alone on PROXY_CORE with one thread.
# Every repetition runs every target once, in turn, so drift hits all alike; the table
# shows medians of requests/s and of wrk's p99 latency, with ratios against HAProxy, and
# the proxy's CPU time per request (its threads' on-CPU time over the run, from
# /proc/PID/task/*/schedstat, divided by the requests served): on a machine shared with
# other work, requests/s and p99 move with that work, CPU per request much less.
# Then each proxy's resident memory (VmRSS of its processes) is read while wrk holds
# 1,000 concurrent connections to it.
#
# Environment (defaults in brackets): RUNS [5], DURATION seconds per run [10],
# CONNECTIONS [100], PROXY_CORE [1], LOAD_CORE [0], BASE_PORT [28100],
# ROUTER_BIN [built with cargo: $CARGO_TARGET_DIR or target, release, example `router`],
# GOLIVE_ARGS [none: default settings] extra router flags, e.g. `--max-in-flight 64`.
# Needs: wrk, haproxy, nginx, taskset (scripts/test installs the first three).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-100}
PROXY_CORE=${PROXY_CORE:-1}
LOAD_CORE=${LOAD_CORE:-0}
BASE_PORT=${BASE_PORT:-28100}
RSS_CONNECTIONS=1000

for tool in wrk haproxy nginx taskset; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
    echo "bench/router.sh: $tool is missing (scripts/test installs it)" >&2
    exit 1
  }
done
PATH="$PATH:/usr/sbin"

if [ -z "${ROUTER_BIN:-}" ]; then
  cargo build --release --locked -p proxy --example router >&2
  ROUTER_BIN="${CARGO_TARGET_DIR:-target}/release/examples/router"
fi

STABLE_PORT=$BASE_PORT
CANARY_PORT=$((BASE_PORT + 1))
GOLIVE_PORT=$((BASE_PORT + 2))
GOLIVE_ADMIN_PORT=$((BASE_PORT + 3))
HAPROXY_PORT=$((BASE_PORT + 4))
NGINX_PORT=$((BASE_PORT + 5))
for port in $STABLE_PORT $CANARY_PORT $GOLIVE_PORT $GOLIVE_ADMIN_PORT $HAPROXY_PORT $NGINX_PORT; do
  if ss -ltnH "sport = :$port" | grep -q .; then
    echo "bench/router.sh: port $port is taken; set BASE_PORT" >&2
    exit 1
  fi
done

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- backends: one nginx, two ports ---------------------------------------------------
mkdir -p "$work/backend" "$work/nginx-proxy"
cat >"$work/backend/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $work/backend/nginx.pid;
error_log $work/backend/error.log;
events { worker_connections 8000; }
http {
  access_log off;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$STABLE_PORT; location / { default_type application/json; return 200 '{"status":"ok","version":"stable"}'; } }
  server { listen 127.0.0.1:$CANARY_PORT; location / { default_type application/json; return 200 '{"status":"ok","version":"canary"}'; } }
}
EOF
taskset -c "$LOAD_CORE" nginx -c "$work/backend/nginx.conf" -p "$work/backend" &
pids+=($!)

# --- the three proxies, 95/5, one core each ---------------------------------------------
taskset -c "$PROXY_CORE" "$ROUTER_BIN" --listen "127.0.0.1:$GOLIVE_PORT" \
  --admin "127.0.0.1:$GOLIVE_ADMIN_PORT" --threads 1 --health-path / \
  --group "stable=127.0.0.1:$STABLE_PORT" --group "canary=127.0.0.1:$CANARY_PORT" \
  --weights stable=95,canary=5 ${GOLIVE_ARGS:-} >"$work/golive.log" 2>&1 &
golive_pid=$!
pids+=($golive_pid)

cat >"$work/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 8000
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend bench
  bind 127.0.0.1:$HAPROXY_PORT
  default_backend app
backend app
  balance roundrobin
  server stable 127.0.0.1:$STABLE_PORT weight 95 check inter 1s
  server canary 127.0.0.1:$CANARY_PORT weight 5 check inter 1s
EOF
taskset -c "$PROXY_CORE" haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
haproxy_pid=$!
pids+=($haproxy_pid)

cat >"$work/nginx-proxy/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $work/nginx-proxy/nginx.pid;
error_log $work/nginx-proxy/error.log;
events { worker_connections 8000; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream app {
    server 127.0.0.1:$STABLE_PORT weight=95;
    server 127.0.0.1:$CANARY_PORT weight=5;
    keepalive 1024;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
taskset -c "$PROXY_CORE" nginx -c "$work/nginx-proxy/nginx.conf" -p "$work/nginx-proxy" &
nginx_pid=$!
pids+=($nginx_pid)

for port in $STABLE_PORT $CANARY_PORT $GOLIVE_PORT $HAPROXY_PORT $NGINX_PORT; do
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
    sleep 0.1
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$port/" || {
    echo "bench/router.sh: nothing answers on port $port" >&2
    cat "$work"/*.log >&2 || true
    exit 1
  }
done

declare -A port_of=([direct]=$STABLE_PORT [golive]=$GOLIVE_PORT [haproxy]=$HAPROXY_PORT [nginx]=$NGINX_PORT)
targets=(direct golive haproxy nginx)
declare -A pids_of=(
  [direct]=""
  [golive]="$golive_pid"
  [haproxy]="$haproxy_pid"
  [nginx]="$nginx_pid $(pgrep -P "$nginx_pid" | tr '\n' ' ')"
)

# On-CPU nanoseconds of every thread of the given processes.
cpu_ns() {
  local pid total=0
  for pid in "$@"; do
    total=$((total + $(cat /proc/"$pid"/task/*/schedstat | awk '{ s += $1 } END { printf "%.0f", s }')))
  done
  echo "$total"
}

# Prints "requests_per_second p99_ms errors cpu_us_per_request" for one wrk run.
run_wrk() {
  local port=$1 connections=$2 seconds=$3 pids=$4 before after
  # shellcheck disable=SC2086 # a list of pids
  before=$(cpu_ns $pids)
  taskset -c "$LOAD_CORE" wrk -t1 -c"$connections" -d"${seconds}s" --latency \
    "http://127.0.0.1:$port/" >"$work/wrk.out"
  # shellcheck disable=SC2086
  after=$(cpu_ns $pids)
  awk -v cpu=$((after - before)) '
      /^ *99%/ {
        v = $2; unit = v; sub(/[0-9.]+/, "", unit); sub(/[a-z]+$/, "", v)
        p99 = (unit == "us") ? v / 1000 : (unit == "s") ? v * 1000 : v
      }
      /requests in/ { requests = $1 }
      /^Requests\/sec:/ { rps = $2 }
      /Non-2xx or 3xx responses:/ { errors += $NF }
      /Socket errors:/ { gsub(/,/, ""); errors += $4 + $6 + $8 + $10 }
      END { printf "%s %s %d %.2f\n", rps, p99, errors, (requests > 0) ? cpu / requests / 1000 : 0 }' "$work/wrk.out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "warming up" >&2
for target in "${targets[@]}"; do run_wrk "${port_of[$target]}" "$CONNECTIONS" 2 "${pids_of[$target]}" >/dev/null; done

for run in $(seq "$RUNS"); do
  for target in "${targets[@]}"; do
    result=$(run_wrk "${port_of[$target]}" "$CONNECTIONS" "$DURATION" "${pids_of[$target]}")
    echo "run $run $target: $result (req/s p99_ms errors cpu_us/request)" >&2
    echo "$result" >>"$work/results.$target"
  done
done

# Resident memory of each proxy's processes while 1,000 connections are open.
rss_kb() {
  local total=0 pid
  for pid in "$@"; do
    total=$((total + $(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")))
  done
  echo "$total"
}
declare -A rss_idle rss_loaded
for target in golive haproxy nginx; do
  # shellcheck disable=SC2086 # a list of pids
  rss_idle[$target]=$(rss_kb ${pids_of[$target]})
  taskset -c "$LOAD_CORE" wrk -t1 -c"$RSS_CONNECTIONS" -d6s "http://127.0.0.1:${port_of[$target]}/" >/dev/null &
  wrk_pid=$!
  sleep 4
  open=$(ss -tnH state established "dport = :${port_of[$target]}" | wc -l)
  # shellcheck disable=SC2086
  rss_loaded[$target]="$(rss_kb ${pids_of[$target]}) $open"
  wait "$wrk_pid"
done

echo
echo "## Built-in router vs HAProxy vs nginx, 95/5 split"
echo
echo "$RUNS runs of wrk -t1 -c$CONNECTIONS -d${DURATION}s per target (medians); each proxy pinned to"
echo "core $PROXY_CORE with one thread/worker; wrk and the nginx backends on core $LOAD_CORE."
echo "The ratios are medians of each run's ratio to HAProxy's run just before or after it,"
echo "so a slow stretch of the machine weighs on both sides of a ratio alike."
echo
echo "| target | requests/s | p99 latency | req/s vs HAProxy | p99 vs HAProxy | CPU vs HAProxy | proxy CPU per request | errors | RSS idle | RSS at $RSS_CONNECTIONS conns |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
# The median over runs of column $2 of a target's results divided by HAProxy's, run by run.
paired() { paste -d' ' "$work/results.$1" "$work/results.haproxy" | awk -v c="$2" '{ print (($(c + 4)) > 0) ? $c / $(c + 4) : 0 }' | median; }
for target in "${targets[@]}"; do
  rps=$(cut -d' ' -f1 "$work/results.$target" | median)
  p99=$(cut -d' ' -f2 "$work/results.$target" | median)
  errors=$(awk '{ s += $3 } END { print s }' "$work/results.$target")
  cpu="-"
  [ "$target" = direct ] || cpu="$(cut -d' ' -f4 "$work/results.$target" | median) µs"
  idle="-" loaded="-"
  if [ -n "${rss_idle[$target]:-}" ]; then
    idle=$(awk -v kb="${rss_idle[$target]}" 'BEGIN { printf "%.1f MB", kb / 1024 }')
    read -r kb open <<<"${rss_loaded[$target]}"
    loaded=$(awk -v kb="$kb" -v open="$open" 'BEGIN { printf "%.1f MB (%d open)", kb / 1024, open }')
  fi
  cpu_ratio="-"
  [ "$target" = direct ] || cpu_ratio=$(awk -v r="$(paired "$target" 4)" 'BEGIN { printf "%.2f×", r }')
  awk -v t="$target" -v rps="$rps" -v p99="$p99" -v rr="$(paired "$target" 1)" -v pr="$(paired "$target" 2)" \
    -v cr="$cpu_ratio" -v e="$errors" -v cpu="$cpu" -v idle="$idle" -v loaded="$loaded" 'BEGIN {
      printf "| %s | %.0f | %.2f ms | %.2f× | %.2f× | %s | %s | %d | %s | %s |\n", t, rps, p99, rr, pr, cr, cpu, e, idle, loaded }'
done
echo
echo "golive's router: example \`router\` --threads 1 ${GOLIVE_ARGS:-} (health checks every 1 s on, as HAProxy's)."
echo "Reproduce: GOLIVE_ARGS='${GOLIVE_ARGS:-}' RUNS=$RUNS DURATION=$DURATION CONNECTIONS=$CONNECTIONS PROXY_CORE=$PROXY_CORE LOAD_CORE=$LOAD_CORE bench/router.sh"
