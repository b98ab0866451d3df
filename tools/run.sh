#!/usr/bin/env bash
# `make run`: the whole pipeline on this machine with working local defaults.
#
# Starts Apache Kafka (tools/kafka/kafka.sh, 127.0.0.1:9092), applies the topic
# catalogue, starts an SMTP capture server (127.0.0.1:2525, mail kept in
# .run/mail/) and the four services, then posts examples/payment_failed.json to
# ingest and prints the emails it caused. Runs until Ctrl-C or `make stop`
# (tools/stop.sh), then stops the services (the broker keeps running after
# Ctrl-C: `make stop` stops it too). It also ends, stopping the others, when a
# service exits on its own.
#
# One `make run` per run directory: a second one reports the first (its pid in
# .run/run.pid, held under a lock on .run/run.lock) and leaves it alone.
#
#   SIGNALBOX_RUN_ONCE=1   stop everything right after the demo (used in checks)
#   SIGNALBOX_RUN_DIR      state, logs, pids and mail (default <repo>/.run)
#   INGEST_PORT, EVALUATOR_PORT, DISPATCHER_PORT, SCHEDULER_PORT, SMTP_PORT: as the services
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
py="$repo/.venv/bin/python"
run="${SIGNALBOX_RUN_DIR:-$repo/.run}"
mkdir -p "$run/logs" "$run/pids" "$run/mail"

# The lock is held by this shell (fd 9) until it exits, however it exits; the pid
# file only says who holds it. Taken before any trap, so a refused run stops nothing.
exec 9>>"$run/run.lock"
if ! flock -n 9; then
  echo "make run is already running (pid $(cat "$run/run.pid" 2>/dev/null || echo '?'))" \
       "for $run; left alone. \`make stop\` ends it." >&2
  exit 1
fi
echo $$ > "$run/run.pid"

export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}"
export SMTP_HOST="${SMTP_HOST:-127.0.0.1}" SMTP_PORT="${SMTP_PORT:-2525}"
export TICK_INTERVAL_SECONDS="${TICK_INTERVAL_SECONDS:-10}"
export EVALUATOR_DATA_DIR="${EVALUATOR_DATA_DIR:-$run/evaluator}"
export INGEST_KEYS_FILE="${INGEST_KEYS_FILE:-$run/ingest-keys.json}"
ingest_port="${INGEST_PORT:-8080}" evaluator_port="${EVALUATOR_PORT:-8081}"
dispatcher_port="${DISPATCHER_PORT:-8082}" scheduler_port="${SCHEDULER_PORT:-8083}"
export LOG_FORMAT="${LOG_FORMAT:-json}"
# No API keys for the local demo: ingest allows this on loopback only (see README, Security).
export INGEST_AUTH="${INGEST_AUTH:-none}"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

stop_services() {
  for f in "$run"/pids/*.pid; do
    [[ -f "$f" ]] || continue
    kill -TERM "$(cat "$f")" 2>/dev/null || true
  done
  for f in "$run"/pids/*.pid; do
    [[ -f "$f" ]] || continue
    local pid; pid="$(cat "$f")"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  rm -f "$run/run.pid"
}

all_alive() {  # 0 while every service started here runs; else names the one that ended
  for f in "$run"/pids/*.pid; do
    [[ -f "$f" ]] || continue
    if ! kill -0 "$(cat "$f")" 2>/dev/null; then
      echo "$(basename "$f" .pid) exited; see $run/logs/$(basename "$f" .pid).log"; return 1
    fi
  done
}

start() {  # name, then the command
  local name="$1"; shift
  if [[ -f "$run/pids/$name.pid" ]] && kill -0 "$(cat "$run/pids/$name.pid")" 2>/dev/null; then
    echo "$name already running (pid $(cat "$run/pids/$name.pid"))"; return
  fi
  nohup "$@" >"$run/logs/$name.log" 2>&1 </dev/null 9>&- &  # 9: the lock stays ours
  echo $! > "$run/pids/$name.pid"
  echo "$name started (pid $!, log $run/logs/$name.log)"
}

wait_ready() {  # name, url
  for _ in $(seq 1 180); do
    if curl -fsS "$2" >/dev/null 2>&1; then echo "$1 ready"; return 0; fi
    if ! kill -0 "$(cat "$run/pids/$1.pid")" 2>/dev/null; then
      echo "$1 exited; last lines of $run/logs/$1.log:"; tail -n 30 "$run/logs/$1.log"; return 1
    fi
    sleep 0.5
  done
  echo "$1 not ready after 90 s; see $run/logs/$1.log"; return 1
}

trap 'say "stopping services"; stop_services' EXIT
trap 'exit 130' INT TERM

if [[ "$KAFKA_BOOTSTRAP_SERVERS" == "127.0.0.1:9092" ]]; then
  say "Kafka"; tools/kafka/kafka.sh start 9>&-  # the broker outlives the run: not the lock
fi
say "topics"; "$py" -m signalbox topics apply
say "services"
start smtp-capture "$py" -m signalbox smtp-capture --host 127.0.0.1 --port "$SMTP_PORT" --maildir "$run/mail"
start evaluator "$py" -m signalbox evaluator
start dispatcher "$py" -m signalbox dispatcher
start scheduler "$py" -m signalbox scheduler
start ingest "$py" -m signalbox ingest
wait_ready ingest "http://127.0.0.1:$ingest_port/readyz"
wait_ready evaluator "http://127.0.0.1:$evaluator_port/readyz"
wait_ready dispatcher "http://127.0.0.1:$dispatcher_port/readyz"
wait_ready scheduler "http://127.0.0.1:$scheduler_port/readyz"

say "sample event: examples/payment_failed.json → POST http://127.0.0.1:$ingest_port/v1/events"
# A fresh event id per run: signalbox remembers ids, so a rerun would be (rightly) ignored.
event="$(sed "s/evt_demo_0001/evt_demo_$(date +%s)/" examples/payment_failed.json)"
before=$(ls "$run/mail" | wc -l)
post() {
  curl -sS -X POST -H 'Content-Type: application/json' --data "$event" \
    "http://127.0.0.1:$ingest_port/v1/events"; echo
}
post
say "waiting for the emails it causes (customer + finance alert) at the SMTP capture"
for _ in $(seq 1 120); do
  (( $(ls "$run/mail" | wc -l) >= before + 2 )) && break
  sleep 0.5
done
found=$(( $(ls "$run/mail" | wc -l) - before ))
for f in $(ls -t "$run/mail" | head -n "$found" | sort); do
  echo "--- $run/mail/$f"; sed -n '/^From:/p;/^To:/p;/^Subject:/p' "$run/mail/$f"
done
if (( found < 2 )); then
  echo "expected 2 emails, got $found: look at $run/logs/*.log"
  [[ "${SIGNALBOX_RUN_ONCE:-}" == 1 ]] && exit 1
fi
say "the same event again (a billing system retrying its webhook)"
post
sleep 3
again=$(( $(ls "$run/mail" | wc -l) - before - found ))
echo "new emails after the retry: $again (the event id was recognised)"
if (( again != 0 )) && [[ "${SIGNALBOX_RUN_ONCE:-}" == 1 ]]; then exit 1; fi
cat <<MSG

Where to look:
  mail (each message as .eml)   $run/mail/
  service logs (JSON lines)     $run/logs/{ingest,evaluator,dispatcher,scheduler,smtp-capture}.log
  metrics                       curl 127.0.0.1:$ingest_port/metrics (ingest), :$evaluator_port evaluator, :$dispatcher_port dispatcher, :$scheduler_port scheduler
  post your own events          curl -X POST -H 'Content-Type: application/json' --data @FILE 127.0.0.1:$ingest_port/v1/events
  event types and fields        curl 127.0.0.1:$ingest_port/v1/event-types
  posting the same event again  changes nothing: event ids are deduplicated
MSG
if [[ "${SIGNALBOX_RUN_ONCE:-}" == 1 ]]; then exit 0; fi
say "running (pid $$); Ctrl-C or make stop stops the services (make stop also stops Kafka)"
# `wait` returns as soon as a signal arrives (a foreground sleep would delay the trap
# until it ended); every few seconds the services are checked, so one that dies or is
# stopped from outside ends the run instead of leaving it 'running' with nothing behind.
while all_alive; do
  sleep 5 9>&- & wait $! || true
done
exit 1
