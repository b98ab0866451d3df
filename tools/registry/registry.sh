#!/usr/bin/env bash
# Apicurio Registry on loopback (in-memory storage), for the optional
# Confluent-wire-format mode (SCHEMA_REGISTRY_URL). No Docker needed.
#
#   tools/registry/registry.sh install|start|stop|status
#
# Environment: SIGNALBOX_CACHE (default ~/.cache/signalbox), REGISTRY_HOME_DIR
# (default <repo>/.run/registry), REGISTRY_PORT (default 8085).
# Clients use http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib/daemon.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/daemon.sh"  # repo, cache, log, running, daemon_*
# 3.0.x is the newest line that runs on Java 17 (3.3.x needs 21; there is no 3.1.x
# on Maven Central). Its parent pom is not published, so the one artifact is
# fetched on its own (non-transitively): the tar.gz is self-contained.
version="${APICURIO_VERSION:-3.0.9}"
dist="$cache/apicurio-$version"
home="${REGISTRY_HOME_DIR:-$repo/.run/registry}"
port="${REGISTRY_PORT:-8085}"
pidfile="$home/registry.pid"
logfile="$home/registry.log"
url="http://127.0.0.1:$port/apis/ccompat/v7"

answers() { http_ok "$url/subjects"; }

install() {
  if [[ -f "$dist/.complete" ]]; then return 0; fi
  log "resolving Apicurio Registry $version from Maven Central into $dist"
  mkdir -p "$dist"
  mvn -q -B -Dstyle.color=never dependency:copy \
    -Dartifact="io.apicurio:apicurio-registry-app:$version:tar.gz:all" \
    -Dtransitive=false -DoutputDirectory="$dist" >&2
  tar xzf "$dist"/apicurio-registry-app-"$version"-all.tar.gz -C "$dist"
  rm -f "$dist"/apicurio-registry-app-"$version"-all.tar.gz
  touch "$dist/.complete"
}

start() {
  if running && answers; then log "already running on $url"; return 0; fi
  install
  mkdir -p "$home"
  local jar=""
  for candidate in "$dist"/*-runner.jar "$dist"/quarkus-run.jar; do
    [[ -f "$candidate" ]] && { jar="$candidate"; break; }
  done
  [[ -n "$jar" ]] || { log "no runnable jar in $dist"; exit 1; }
  log "starting Apicurio Registry $version on $url (log: $logfile)"
  cd "$home"
  QUARKUS_HTTP_HOST=127.0.0.1 QUARKUS_HTTP_PORT="$port" \
    daemon_spawn "$logfile" java -Xms64m -Xmx384m -jar "$jar"
  daemon_await 60 "did not answer" answers
  log "ready on $url"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) daemon_stop 20 ;;
  status) if running && answers; then echo "running $url"; else echo "not running"; exit 1; fi ;;
  *) echo "usage: $0 {install|start|stop|status}" >&2; exit 2 ;;
esac
