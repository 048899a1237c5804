# Sourced by scripts/release and scripts/deb: what a build is stamped
# with, the static build itself, and nfpm.

# stamp sets VERSION, COMMIT and DATE for HEAD and exports SOURCE_DATE_EPOCH.
#   VERSION  $VERSION if set; else HEAD's tag (v1.2.3); else the Go
#            pseudo-version the go command would give this commit
#            (v1.2.4-0.20260102030405-abcdef123456 after v1.2.3,
#            v0.0.0-20260102030405-abcdef123456 before any tag), so that
#            both kinds of binary say the same and Debian orders them.
#   COMMIT   HEAD's full hash.
#   DATE     $SOURCE_DATE_EPOCH, by default HEAD's commit time, so that two
#            builds of one commit are byte for byte the same.
# A tree with uncommitted changes adds +dirty to VERSION and COMMIT.
stamp() {
  COMMIT=$(git rev-parse HEAD)
  : "${SOURCE_DATE_EPOCH:=$(git show -s --format=%ct HEAD)}"
  export SOURCE_DATE_EPOCH
  DATE=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)
  local dirty='' ts base
  [ -z "$(git status --porcelain)" ] || dirty=+dirty
  if [ -z "${VERSION:-}" ]; then
    if VERSION=$(git describe --tags --exact-match --match 'v[0-9]*' HEAD 2>/dev/null); then
      VERSION+=$dirty
    else
      ts=$(TZ=UTC git show -s --format=%cd --date=format-local:%Y%m%d%H%M%S HEAD)-${COMMIT:0:12}
      base=$(git describe --tags --abbrev=0 --match 'v[0-9]*' HEAD 2>/dev/null || true)
      case $base in
        '') VERSION=v0.0.0-$ts ;;
        v*-*) VERSION=$base.0.$ts ;;
        *) IFS=. read -r major minor patch <<<"${base#v}"
           VERSION=v$major.$minor.$((patch + 1))-0.$ts ;;
      esac
      VERSION+=$dirty
    fi
  fi
  if ! [[ $VERSION =~ ^v[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]*)?$ ]]; then
    echo "version $VERSION: want v<major>.<minor>.<patch>[-prerelease][+build]" >&2
    return 1
  fi
  COMMIT+=$dirty
}

# build GOARCH OUTPUT: a static linux binary (CGO_ENABLED=0: the SQLite
# store is pure Go), stamped by stamp.
build() {
  CGO_ENABLED=0 GOOS=linux GOARCH=$1 go build -trimpath -buildvcs=false \
    -ldflags "-s -w -X main.version=$VERSION -X main.commit=$COMMIT -X main.date=$DATE" \
    -o "$2" ./cmd/smsbridge
}

# nfpm_path prints the path of nfpm, built once from its Go module into
# $(go env GOPATH)/bin/nfpm-<version>. NFPM_VERSION picks another release;
# by default v2.48.0, or v2.45.2 where one of 2.48.0's dependencies cannot
# be fetched.
nfpm_path() {
  local v tmp bin
  for v in ${NFPM_VERSION:-v2.48.0 v2.45.2}; do
    bin=$(go env GOPATH)/bin/nfpm-$v
    if [ ! -x "$bin" ]; then
      echo "building nfpm $v from its Go module" >&2
      tmp=$(mktemp -d)
      if ! GOBIN=$tmp go install "github.com/goreleaser/nfpm/v2/cmd/nfpm@$v" >&2; then
        rm -rf "$tmp"; continue
      fi
      mkdir -p "$(dirname "$bin")" && mv "$tmp/nfpm" "$bin" && rm -rf "$tmp"
    fi
    echo "$bin"
    return 0
  done
  echo "could not build nfpm" >&2
  return 1
}
