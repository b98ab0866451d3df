#!/usr/bin/env bash
# Render a kustomization without a cluster: `tools/k8s/kustomize.sh DIR` prints the
# manifests `kubectl apply -k DIR` would apply.
#
# Uses kubectl's built-in kustomize (Debian/Google's kubectl package, present on the
# project's machines), else a kustomize binary on PATH, else builds kustomize v5.5.0
# (the version in kubectl 1.32) once from the Go module proxy into the cache.
#   SIGNALBOX_CACHE   default ~/.cache/signalbox
set -euo pipefail
version=v5.5.0
if command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1; then
  exec kubectl kustomize "$@"
fi
if command -v kustomize >/dev/null; then
  exec kustomize build "$@"
fi
bin="${SIGNALBOX_CACHE:-$HOME/.cache/signalbox}/kustomize-$version"
if [[ ! -x "$bin/kustomize" ]]; then
  command -v go >/dev/null || { echo "kustomize.sh: needs kubectl, kustomize or Go" >&2; exit 2; }
  echo "kustomize.sh: building kustomize $version into $bin (once)" >&2
  GOBIN="$bin" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$version" >&2
fi
exec "$bin/kustomize" build "$@"
