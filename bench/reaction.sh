#!/usr/bin/env bash
# How fast traffic leaves a bad version, against the real programs:
#  (a) rule condition met → router confirms canary weight 0: HAProxy runtime API (unix
#      socket, TCP), the built-in router, nginx (write, test, reload, confirm); socat
#      spawned per command for reference;
#  (b) fault injected → last request served by the bad version, rules evaluated every
#      second with `for: 1s`: HAProxy judged by Prometheus (1 s scrape of its exporter),
#      and the built-in router judged by its own telemetry;
#  (c) weight changes under keep-alive load: requests lost per change (HAProxy, the
#      built-in router, nginx reloads with and without client keep-alive).
#
# Environment (defaults in brackets): RUNS [300] for (a), NGINX_RUNS [30],
# FAULT_RUNS [5] for (b), NGINX_RELOADS [20] changes per router for (c), ONLY [a,b,c].
# Needs: haproxy, nginx, prometheus, socat (scripts/test installs the first three).
set -euo pipefail
cd "$(dirname "$0")/.."
PATH="$PATH:/usr/sbin"
for tool in haproxy nginx prometheus socat; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "bench/reaction.sh: $tool is missing" >&2
    exit 1
  }
done
echo "reproduce: RUNS=${RUNS:-300} NGINX_RUNS=${NGINX_RUNS:-30} FAULT_RUNS=${FAULT_RUNS:-5} NGINX_RELOADS=${NGINX_RELOADS:-20} ONLY=${ONLY:-a,b,c} bench/reaction.sh"
cargo bench --locked -p adapters --bench reaction
