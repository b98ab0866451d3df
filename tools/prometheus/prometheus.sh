#!/usr/bin/env bash
# Prometheus and promtool from Debian's `prometheus` package, unpacked into the
# cache (no root, no service, nothing installed system-wide): the alert rules'
# unit tests (`promtool test rules`) and the end-to-end test that scrapes a live
# pipeline use these binaries.
#
#   tools/prometheus/prometheus.sh install   download and unpack once (idempotent)
#   tools/prometheus/prometheus.sh bin       print the directory holding both binaries
#   tools/prometheus/prometheus.sh start|stop|status
#       a Prometheus on loopback scraping `make run`'s services with the alert rules
#       (deploy/prometheus/prometheus.local.yml)
#
# Environment: SIGNALBOX_CACHE (default ~/.cache/signalbox), PROMETHEUS_PORT (default
# 9090), PROMETHEUS_HOME_DIR (default <repo>/.run/prometheus: its data and log).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/daemon.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/daemon.sh"  # repo, cache, log, running, daemon_*
dist="$cache/prometheus-debian"
home="${PROMETHEUS_HOME_DIR:-$repo/.run/prometheus}"
port="${PROMETHEUS_PORT:-9090}"
pidfile="$home/prometheus.pid"
logfile="$home/prometheus.log"
url="http://127.0.0.1:$port"

download() {  # into the current directory; apt's lists may be missing on a new machine
  # As root, apt downloads as its sandbox user, who cannot write to a private temp dir.
  local apt=(apt-get -qq); [[ "$(id -u)" == 0 ]] && apt+=(-o APT::Sandbox::User=root)
  "${apt[@]}" download prometheus >/dev/null 2>&1 && return 0
  if [[ "$(id -u)" == 0 ]]; then
    log "apt-get download failed; refreshing the package lists (apt-get update)"
    "${apt[@]}" update >&2
    "${apt[@]}" download prometheus >&2 && return 0
  fi
  log "could not download Debian's prometheus package (apt-get download prometheus)"
  return 1
}

install() {
  if [[ -f "$dist/.complete" ]]; then return 0; fi
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
    || { log "needs apt-get and dpkg-deb (a Debian-based machine)"; exit 1; }
  local work; work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  log "downloading Debian's prometheus package into $dist"
  (cd "$work" && download) </dev/null
  local deb; deb="$(ls "$work"/prometheus_*.deb)"
  dpkg-deb -x "$deb" "$work/root"
  rm -rf "$dist" && mkdir -p "$dist/bin"
  cp "$work/root/usr/bin/prometheus" "$work/root/usr/bin/promtool" "$dist/bin/"
  dpkg-deb -f "$deb" Version > "$dist/VERSION"
  "$dist/bin/promtool" --version >/dev/null
  touch "$dist/.complete"
  log "installed prometheus $(cat "$dist/VERSION") in $dist/bin"
}

answers() { http_ok "$url/-/ready"; }

start() {
  if running && answers; then log "already running on $url"; return 0; fi
  install
  mkdir -p "$home"
  log "starting Prometheus on $url (log: $logfile)"
  daemon_spawn "$logfile" "$dist/bin/prometheus" \
    --config.file="$repo/deploy/prometheus/prometheus.local.yml" \
    --storage.tsdb.path="$home/data" --web.listen-address="127.0.0.1:$port"
  daemon_await 30 "did not answer" answers
  log "ready on $url (alerts: $url/alerts)"
}

case "${1:-}" in
  install) install ;;
  bin) install; echo "$dist/bin" ;;
  start) start ;;
  stop) daemon_stop 20 ;;
  status) if running && answers; then echo "running $url"; else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 {install|bin|start|stop|status}" >&2; exit 2 ;;
esac
