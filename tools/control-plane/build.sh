#!/usr/bin/env bash
# Builds the local control plane (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl,
# etcd, kwok) from the pinned Go modules beside this script into a cache folder keyed by the pinned
# versions and go.sum files. A second run with the cache complete does nothing.
#
#   tools/control-plane/build.sh            build if needed, print the binary folder on the last line
#   tools/control-plane/build.sh --print    print the binary folder, build nothing (exit 1 if absent)
#
# Environment: KUBEWISE_CACHE (default <repo>/.kubewise/cache) is where binaries go.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${KUBEWISE_CACHE:-$repo/.kubewise/cache}"
key="$(cat "$here/versions.env" "$here"/*/go.mod "$here"/*/go.sum "$here/build.sh" | sha256sum | cut -c1-12)"
out="$cache/control-plane-${KUBERNETES_VERSION}-${key}"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok)

complete() {
  for b in "${binaries[@]}"; do [[ -x "$out/$b" ]] || return 1; done
}

if [[ "${1:-}" == "--print" ]]; then
  complete && { echo "$out"; exit 0; }
  echo "control-plane binaries not built yet (expected in $out)" >&2
  exit 1
fi

if complete; then
  echo "control plane ${KUBERNETES_VERSION} already built"
  echo "$out"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "error: Go is not installed; building the local control plane needs Go >= 1.26 (https://go.dev/dl/)" >&2
  exit 1
fi

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -trimpath"
tmp="$out.partial"
mkdir -p "$tmp"

major="${KUBERNETES_VERSION#v}"; major="${major%%.*}"
minor="${KUBERNETES_VERSION#v*.}"; minor="${minor%%.*}"
build_date="$(date -u -d "@${SOURCE_DATE_EPOCH:-0}" +%Y-%m-%dT%H:%M:%SZ)"
vpkg=k8s.io/component-base/version
k8s_ldflags="-s -w -X $vpkg.gitVersion=$KUBERNETES_VERSION -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor \
  -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=$build_date -X $vpkg.gitCommit=unknown \
  -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/client-go/pkg/version.gitMajor=$major \
  -X k8s.io/client-go/pkg/version.gitMinor=$minor"

step() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
start=$SECONDS

for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  step "building $cmd $KUBERNETES_VERSION"
  (cd "$here/kubernetes" && go build -ldflags "$k8s_ldflags" -o "$tmp/$cmd" "k8s.io/kubernetes/cmd/$cmd")
done

step "building etcd $ETCD_VERSION"
(cd "$here/etcd" && go build -ldflags "-s -w" -o "$tmp/etcd" go.etcd.io/etcd/server/v3)

step "building kwok $KWOK_VERSION"
(cd "$here/kwok" && go build -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
  -o "$tmp/kwok" sigs.k8s.io/kwok/cmd/kwok)

rm -rf "$out"
mv "$tmp" "$out"
step "control plane built in $((SECONDS - start)) s"
echo "$out"
