#!/usr/bin/env bash
# `make stop`: end a running `make run` (it stops its services on the way out),
# stop any service it left behind, then the broker that `make run` started.
#
#   SIGNALBOX_RUN_DIR   as for tools/run.sh (default <repo>/.run)
#   SIGNALBOX_STOP_KAFKA=0   leave the broker running (used in checks on a shared broker)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
run="${SIGNALBOX_RUN_DIR:-$repo/.run}"

wait_gone() {  # pid, seconds
  for _ in $(seq 1 $(( $2 * 2 ))); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.5; done
  return 1
}

if [[ -f "$run/run.pid" ]]; then
  pid="$(cat "$run/run.pid")"
  if kill -TERM "$pid" 2>/dev/null; then
    echo "stopping make run (pid $pid)"
    # Its exit trap gives each service 30 s for a clean SIGTERM shutdown.
    wait_gone "$pid" 45 || { echo "make run (pid $pid) still running after 45 s; killing it"
                             kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$run/run.pid"
fi
for f in "$run"/pids/*.pid; do
  [[ -f "$f" ]] || continue
  pid="$(cat "$f")"
  if kill -TERM "$pid" 2>/dev/null; then
    echo "stopping $(basename "$f" .pid) (pid $pid)"
    wait_gone "$pid" 30 || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
done
if [[ "${SIGNALBOX_STOP_KAFKA:-1}" != 0 ]]; then
  "$repo/tools/kafka/kafka.sh" stop
fi
