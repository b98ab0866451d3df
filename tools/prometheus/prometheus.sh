#!/usr/bin/env bash
# Prometheus and promtool from Debian's `prometheus` package, unpacked into the
# cache (no root, no service, nothing installed system-wide): the alert rules'
# unit tests (`promtool test rules`) and the end-to-end test that scrapes a live
# pipeline use these binaries.
#
#   tools/prometheus/prometheus.sh install   download and unpack once (idempotent)
#   tools/prometheus/prometheus.sh bin       print the directory holding both binaries
#
# Environment: SIGNALBOX_CACHE (default ~/.cache/signalbox).
set -euo pipefail

cache="${SIGNALBOX_CACHE:-$HOME/.cache/signalbox}"
dist="$cache/prometheus-debian"

log() { printf 'prometheus.sh: %s\n' "$*" >&2; }

download() {  # into the current directory; apt's lists may be missing on a new machine
  apt-get download -qq prometheus >/dev/null 2>&1 && return 0
  if [[ "$(id -u)" == 0 ]]; then
    log "apt-get download failed; refreshing the package lists (apt-get update)"
    apt-get update -qq >&2
    apt-get download -qq prometheus >&2 && return 0
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
  # apt's download sandbox user must be able to write where the .deb lands.
  chmod 755 "$work"
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

case "${1:-}" in
  install) install ;;
  bin) install; echo "$dist/bin" ;;
  *) echo "usage: $0 {install|bin}" >&2; exit 2 ;;
esac
