# shellcheck shell=bash disable=SC2034,SC2154  # variables shared with the sourcing script
# What the scripts that run one local service in the background share
# (tools/kafka/kafka.sh, tools/registry/registry.sh, tools/prometheus/prometheus.sh):
# the repo and jar cache paths, a log prefix, a pid file, start-up polling, and a stop
# that escalates from SIGTERM to SIGKILL. Sourced, not run; the script then sets
# `pidfile` and `logfile`, which the functions below read.

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${SIGNALBOX_CACHE:-$HOME/.cache/signalbox}"
daemon_script="$(basename "${BASH_SOURCE[1]}")"

log() { printf '%s: %s\n' "$daemon_script" "$*" >&2; }

# The process named in the pid file is alive.
running() { [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

# Something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# $1 answers HTTP with a success status.
http_ok() { curl -fsS -o /dev/null "$1" 2>/dev/null; }

# daemon_spawn OUT COMMAND...: COMMAND in the background, immune to hangups, its output in
# OUT and its pid in the pid file. Every stream is redirected: a caller reading the script's
# output (a test fixture) must not wait on the service.
daemon_spawn() {
  daemon_out="$1"; shift
  nohup "$@" >"$daemon_out" 2>&1 </dev/null &
  echo $! > "$pidfile"
}

# daemon_await SECONDS WHAT READY...: poll the command READY... every half second until it
# succeeds. If the service dies first, print the end of its log (or of its output, when it
# died before writing a log) and exit 1; after SECONDS, say WHAT did not happen and exit 1.
daemon_await() {
  local seconds="$1" what="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if ! running; then
      log "exited during start-up; last lines of $logfile:"
      tail -n 30 "$logfile" >&2 2>/dev/null || tail -n 30 "$daemon_out" >&2
      exit 1
    fi
    if (( SECONDS > deadline )); then log "$what in $seconds s"; exit 1; fi
    sleep 0.5
  done
}

# daemon_stop GRACE: SIGTERM to the service and its children (kafka.sh's pid is the shell
# that runs the JVM), SIGKILL to both after GRACE seconds; the pid file goes.
daemon_stop() {
  if ! running; then log "not running"; rm -f "$pidfile"; return 0; fi
  local pid; pid="$(cat "$pidfile")"
  pkill -TERM -P "$pid" 2>/dev/null || true
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 $(( $1 * 2 ))); do
    running || break
    sleep 0.5
  done
  if running; then
    log "did not stop in $1 s; killing"
    pkill -KILL -P "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "stopped"
}
