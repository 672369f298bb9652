#!/usr/bin/env bash
# Builds the "twins": same-version stand-ins of the upstream images, for machines that
# reach package registries (PyPI, Debian, the Go module proxy) but no container
# registry. See DESIGN.md, "Machines with no container registry".
#
#   bash twins/build.sh [--force] [--only NAME]... [--except NAME]...
#     NAME: busybox prometheus alertmanager otelcol telemetrygen jaeger thanos node-exporter
#           telegraf python-base demo, and the upgrade tier's previous releases:
#           prometheus-previous alertmanager-previous otelcol-previous jaeger-previous
#     --force: rebuild even when an image is up to date
#     --except: leave NAME to a later run (images.env then leaves it out too: .ci/run
#               builds the twins only some tiers need beside the tiers)
#
# Needs root (apt, debootstrap), Go and a running Docker engine (.ci/docker-engine.sh).
# Go binaries are built on the host (docker builds have no network) and copied into
# images by the small Dockerfiles in twins/<name>/. An image is skipped when its tag
# exists with an io.twins.recipe label equal to the hash of its recipe and inputs.
# Writes twins/images.env: one VAR=image line per twin present, plus REQUIRED_IMAGES.
set -euo pipefail
{ # read whole before running: edits during a long build cannot derail a running copy
cd "$(dirname "$0")/.."
ROOT=$PWD
TW=$ROOT/twins
CACHE=$TW/.cache          # contexts, rootfs trees; Go caches stay in their defaults
mkdir -p "$CACHE"
# One build at a time per checkout (shared contexts and tags).
exec 9>"$CACHE/lock"
flock -n 9 || { echo "[twins] another twins/build.sh is running here; waiting for it"; flock 9; }

T0=$SECONDS
log() { echo "[twins +$((SECONDS - T0))s] $*"; }
die() { echo "[twins] ERROR: $*" >&2; exit 1; }

# ---- versions: the compose files' image defaults are the one place they are pinned ----
# (docker-compose*.yml; the upgrade tier's previous releases: tests/upgrade/docker-compose.previous.yml;
# the benchmark's load generator: bench/docker-compose.bench.yml)
pin() {  # pin VAR: the default image the compose files give ${VAR:-...}
  local ref; ref=$(sed -n "s/.*\${$1:-\([^}]*\)}.*/\1/p" "$ROOT"/docker-compose*.yml \
      "$ROOT"/tests/upgrade/docker-compose.previous.yml "$ROOT"/bench/docker-compose.bench.yml | head -1)
  [ -n "$ref" ] || die "no compose file has a \${$1:-...} default"
  echo "$ref"
}
version_of() { local t; t=$(pin "$1"); t=${t##*:}; echo "${t#v}"; }  # image tag without v
PROM_VERSION=$(version_of PROMETHEUS_IMAGE)
# Prometheus 3.X.Y is Go module v0.3XX.Y (the module path has no /v3).
IFS=. read -r _maj _min _pat <<<"$PROM_VERSION"
PROM_MOD=github.com/prometheus/prometheus@v0.$((_maj * 100 + _min)).$_pat
AM_VERSION=$(version_of ALERTMANAGER_IMAGE); AM_MOD=github.com/prometheus/alertmanager@v$AM_VERSION
OTELCOL_VERSION=$(version_of OTELCOL_IMAGE)
OCB_MOD=go.opentelemetry.io/collector/cmd/builder@v$OTELCOL_VERSION
# telemetrygen (the capacity benchmark's load generator) ships with every contrib release;
# the proxy here refuses it after the previous collector pin's release (the newest contrib
# release it serves whole), which stands in for the pinned one.
TELEMETRYGEN_PIN=$(pin TELEMETRYGEN_IMAGE)
TELEMETRYGEN_VERSION=$(version_of OTELCOL_PREVIOUS_IMAGE)
TELEMETRYGEN_MOD=github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v$TELEMETRYGEN_VERSION
# Jaeger: v2.x tags are not Go module versions (no /v2 path) and the proxy refuses the
# pinned tag's commit. v1.76.0 was released from the same commit as v2.13.0, so its
# cmd/jaeger IS the Jaeger v2.13.0 binary: the newest Jaeger v2 that can be built here.
# It stands in for the pinned $(pin JAEGER_IMAGE) and is labelled so everywhere.
TWIN_GO_REPLACES="  - github.com/aws/aws-sdk-go-v2/service/servicediscovery => github.com/aws/aws-sdk-go-v2/service/servicediscovery v1.43.0"
JAEGER_PIN=$(version_of JAEGER_IMAGE)
JAEGER_VERSION=2.13.0; JAEGER_MOD=github.com/jaegertracing/jaeger@v1.76.0
# The release before it (v1.75.0 = v2.12.0) stands in for the upgrade tier's previous pin.
JAEGER_PREVIOUS_VERSION=2.12.0; JAEGER_PREVIOUS_MOD=github.com/jaegertracing/jaeger@v1.75.0
# Thanos (the scale-out profile, docker-compose.scale.yml). Its go.mod asks for a Go newer
# than the machine's: the approved toolchain comes from the module proxy like a module.
THANOS_VERSION=$(version_of THANOS_IMAGE); THANOS_MOD=github.com/thanos-io/thanos@v$THANOS_VERSION
THANOS_GOTOOLCHAIN=go1.27.3
# The host and containers profiles: node_exporter (a Prometheus project, built as
# Prometheus is) and Telegraf (its own custom-build tags: only the plugins we use).
NODE_EXPORTER_VERSION=$(version_of NODE_EXPORTER_IMAGE); NODE_EXPORTER_MOD=github.com/prometheus/node_exporter@v$NODE_EXPORTER_VERSION
TELEGRAF_VERSION=$(version_of TELEGRAF_IMAGE); TELEGRAF_MOD=github.com/influxdata/telegraf@v$TELEGRAF_VERSION
TELEGRAF_PLUGINS="inputs.docker inputs.docker_log outputs.prometheus_client outputs.socket_writer serializers.json"
SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

BUSYBOX_TAG=twin/busybox:$SUITE
PROMETHEUS_TAG=twin/prometheus:v$PROM_VERSION
ALERTMANAGER_TAG=twin/alertmanager:v$AM_VERSION
OTELCOL_TAG=twin/otelcol-contrib:$OTELCOL_VERSION
TELEMETRYGEN_TAG=twin/telemetrygen:v$TELEMETRYGEN_VERSION
JAEGER_TAG=twin/jaeger:$JAEGER_VERSION
THANOS_TAG=twin/thanos:v$THANOS_VERSION
NODE_EXPORTER_TAG=twin/node-exporter:v$NODE_EXPORTER_VERSION
TELEGRAF_TAG=twin/telegraf:$TELEGRAF_VERSION
PYBASE_TAG=twin/python-base:$SUITE
DEMO_TAG=twin/demo-app:dev

ALL=(busybox prometheus alertmanager otelcol telemetrygen jaeger thanos node-exporter telegraf python-base demo
     prometheus-previous alertmanager-previous otelcol-previous jaeger-previous)
ONLY=(); EXCEPT=(); FORCE=
while [ $# -gt 0 ]; do
  case $1 in
    --only) ONLY+=("$2"); shift 2 ;;
    --only=*) ONLY+=("${1#--only=}"); shift ;;
    --except) EXCEPT+=("$2"); shift 2 ;;
    --except=*) EXCEPT+=("${1#--except=}"); shift ;;
    --force) FORCE=1; shift ;;
    -h|--help) sed -n '2,15p' "$TW/build.sh"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
for n in "${ONLY[@]}" "${EXCEPT[@]}"; do
  [[ " ${ALL[*]} " == *" $n "* ]] || { echo "unknown image: $n (one of: ${ALL[*]})" >&2; exit 2; }
done
excepted() { [[ " ${EXCEPT[*]} " == *" $1 "* ]]; }
wanted() { ! excepted "$1" && { [ ${#ONLY[@]} -eq 0 ] || [[ " ${ONLY[*]} " == *" $1 "* ]]; }; }


# ---- helpers ------------------------------------------------------------------------
# hash_of ARG...: files and directories by content, anything else as a literal string.
hash_of() {
  local a
  for a in "$@"; do
    if [ -d "$a" ]; then
      find "$a" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0r sha256sum
    elif [ -f "$a" ]; then sha256sum "$a"
    else printf '%s\n' "$a"
    fi
  done | sha256sum | cut -c1-16
}
label_of() { docker image inspect -f '{{index .Config.Labels "io.twins.recipe"}}' "$1" 2>/dev/null || true; }
image_id() { docker image inspect -f '{{.Id}}' "$1"; }
# cached TAG HASH: true (and says so) when TAG was built from this exact recipe.
cached() {
  [ -z "$FORCE" ] || return 1
  if [ "$(label_of "$1")" = "$2" ]; then log "$1 is up to date (recipe $2), skipped"; return 0; fi
  return 1
}
# dbuild TAG HASH DOCKERFILE_DIR CONTEXT [BUILD_ARG=VALUE...]: offline docker build with
# the recipe label (versions reach the Dockerfiles as build args, never typed there).
dbuild() {
  local blog=$CACHE/build-${1//[\/:]/_}.log tag=$1 h=$2 df=$3 ctx=$4 a args=(); shift 4
  for a in "$@"; do args+=(--build-arg "$a"); done
  # Engine 20.10's classic builder: no BuildKit needed, no network used.
  DOCKER_BUILDKIT=0 docker build --label "io.twins.recipe=$h" "${args[@]}" -t "$tag" -f "$df/Dockerfile" "$ctx" \
    > "$blog" 2>&1 || { tail -30 "$blog" >&2; die "docker build $tag failed"; }
  log "$tag built: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%.1f MB", $1/1e6}')"
}
apt_need() {  # apt_need PKG...: install what is missing
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
deb_version() { dpkg-query -W -f='${Version}' "$1"; }
# mod_dir MODULE@VERSION: download a module through the proxy, print its cache dir.
mod_dir() {
  (cd "$CACHE" && GOWORK=off GOFLAGS=-mod=mod go mod download -json "$1") \
    | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p'
}
# gobuild MODDIR OUT PKG TAGS LDFLAGS: static build inside the module (its go.mod,
# go.sum and replace directives apply), like the upstream release builds.
gobuild() {
  (cd "$1" && GOWORK=off CGO_ENABLED=0 GOFLAGS=-mod=readonly \
    go build -trimpath -buildvcs=false -tags "$4" -ldflags "$5" -o "$2" "$3")
}
# prom_ldflags VERSION REVISION INFO_FILE: github.com/prometheus/common/version stamping
# as promu does. The module zip has no git data, so the revision is the module version;
# the build date is the release time from the proxy's .info file (reproducible).
prom_ldflags() {
  local date p=github.com/prometheus/common/version
  date=$(sed -n 's/.*"Time":"\([0-9]*\)-\([0-9]*\)-\([0-9]*\)T\([0-9:]*\)Z".*/\1\2\3-\4/p' "$3")
  echo "-X $p.Version=$1 -X $p.Revision=$2 -X $p.Branch=HEAD -X $p.BuildUser=twins@localhost -X $p.BuildDate=$date"
}

# ---- preflight ------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "run as root (apt-get, debootstrap)"
command -v go >/dev/null || die "Go is not installed (PATH=$PATH)"
docker info >/dev/null 2>&1 || die "no Docker engine; run: bash .ci/docker-engine.sh"
apt_need busybox-static debootstrap ca-certificates
log "start: $(go version | cut -d' ' -f3), docker $(docker info -f '{{.ServerVersion}}')"

# ---- 1. busybox base --------------------------------------------------------------------
# Upstream prom/prometheus and prom/alertmanager sit on quay.io/prometheus/busybox: a
# static busybox with every applet in /bin, /etc/passwd with nobody, /tmp and CA certs.
build_busybox() {
  local h ctx=$CACHE/busybox root
  h=$(hash_of "$(declare -f build_busybox)" "$TW/busybox" "busybox-static=$(deb_version busybox-static)" \
      /etc/ssl/certs/ca-certificates.crt)
  cached "$BUSYBOX_TAG" "$h" && return 0
  root=$CACHE/busybox-rootfs   # outside the build context
  rm -rf "$ctx" "$root"; mkdir -p "$ctx" "$root"/{bin,etc/ssl/certs,home,root,var/spool/mail,tmp}
  cp /bin/busybox "$root/bin/busybox"
  local app
  for app in $("$root/bin/busybox" --list); do
    [ "$app" = busybox ] || ln -s busybox "$root/bin/$app"
  done
  cp "$TW/busybox/passwd" "$TW/busybox/group" "$TW/busybox/nsswitch.conf" "$root/etc/"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  chmod 1777 "$root/tmp"; chmod 700 "$root/root"
  tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$ctx/rootfs.tar" .
  dbuild "$BUSYBOX_TAG" "$h" "$TW/busybox" "$ctx"
}

# ---- 2. Prometheus ---------------------------------------------------------------------
# Tags as .promu.yml minus builtinassets: the React UI is not in the Go module (it is
# built with npm upstream), so the twin serves the API and /-/ready but no web UI; plus
# remove_all_sd (below).
build_prometheus() {
  local h ctx=$CACHE/prometheus dir
  h=$(hash_of "$(declare -f build_prometheus gobuild prom_ldflags)" "$PROM_MOD" "$(go version)" \
      "$TW/prometheus" "$(image_id "$BUSYBOX_TAG")")
  cached "$PROMETHEUS_TAG" "$h" && return 0
  dir=$(mod_dir "$PROM_MOD"); [ -d "$dir" ] || die "could not download $PROM_MOD"
  rm -rf "$ctx"; mkdir -p "$ctx"
  local ld; ld=$(prom_ldflags "$PROM_VERSION" "${PROM_MOD#*@}" \
      "$(go env GOMODCACHE)/cache/download/${PROM_MOD%@*}/@v/${PROM_MOD#*@}.info")
  log "go build prometheus, promtool ($PROM_MOD, service discovery: file, http, static)"
  # Upstream's remove_all_sd tag (its README, "Service discovery plugins"): the stack and
  # its tests discover targets from files only, and the cloud SDKs are most of a cold build.
  gobuild "$dir" "$ctx/prometheus" ./cmd/prometheus "netgo remove_all_sd" "$ld"
  gobuild "$dir" "$ctx/promtool" ./cmd/promtool "netgo remove_all_sd" "$ld"
  cp "$dir/documentation/examples/prometheus.yml" "$dir/LICENSE" "$dir/NOTICE" "$ctx/"
  chmod 644 "$ctx"/*.yml "$ctx/LICENSE" "$ctx/NOTICE"
  dbuild "$PROMETHEUS_TAG" "$h" "$TW/prometheus" "$ctx" "VERSION=$PROM_VERSION" "MODULE=$PROM_MOD"
}

# ---- 3. Alertmanager ---------------------------------------------------------------------
build_alertmanager() {
  local h ctx=$CACHE/alertmanager dir
  h=$(hash_of "$(declare -f build_alertmanager gobuild prom_ldflags)" "$AM_MOD" "$(go version)" \
      "$TW/alertmanager" "$(image_id "$BUSYBOX_TAG")")
  cached "$ALERTMANAGER_TAG" "$h" && return 0
  dir=$(mod_dir "$AM_MOD"); [ -d "$dir" ] || die "could not download $AM_MOD"
  rm -rf "$ctx"; mkdir -p "$ctx"
  # ui/web.go embeds ui/app/dist, the Elm UI that upstream builds with npm + elm (whose
  # compiler is fetched from GitHub, out of reach here) and that the module zip lacks.
  # Build from a writable copy with a one-page dist saying so; the API is unaffected.
  local src=$CACHE/src/alertmanager@${AM_MOD#*@}
  rm -rf "$src"; mkdir -p "$(dirname "$src")"; cp -r "$dir" "$src"; chmod -R u+w "$src"
  # Since 0.35 ui/web.go serves dist/elm (at /) and dist/mantine (at /ui/), HTML gzipped.
  local ui
  for ui in elm mantine; do
    mkdir -p "$src/ui/app/dist/$ui"
    sed "s/@VERSION@/$AM_VERSION/" "$TW/alertmanager/index.html" | gzip -9n > "$src/ui/app/dist/$ui/index.html.gz"
  done
  dir=$src
  local ld; ld=$(prom_ldflags "$AM_VERSION" "${AM_MOD#*@}" \
      "$(go env GOMODCACHE)/cache/download/${AM_MOD%@*}/@v/${AM_MOD#*@}.info")
  log "go build alertmanager, amtool ($AM_MOD)"
  gobuild "$dir" "$ctx/alertmanager" ./cmd/alertmanager netgo "$ld"
  gobuild "$dir" "$ctx/amtool" ./cmd/amtool netgo "$ld"
  cp "$dir/examples/ha/alertmanager.yml" "$dir/LICENSE" "$dir/NOTICE" "$ctx/"
  chmod 644 "$ctx"/*.yml "$ctx/LICENSE" "$ctx/NOTICE"
  dbuild "$ALERTMANAGER_TAG" "$h" "$TW/alertmanager" "$ctx" "VERSION=$AM_VERSION"
}

# ---- 4. OpenTelemetry Collector (ocb) ----------------------------------------------------
OTELCOL_MANIFEST=$ROOT/otel-collector/builder-config.yaml
build_otelcol() {
  local h ctx=$CACHE/otelcol-$OTELCOL_VERSION manifest=$OTELCOL_MANIFEST
  grep -q "^  version: $OTELCOL_VERSION\$" "$manifest" \
    || die "$(basename "$manifest") dist.version is not the pinned collector $OTELCOL_VERSION"
  h=$(hash_of "$(declare -f build_otelcol)" "$OCB_MOD" "$(go version)" "$manifest" "$TW/otelcol" \
      "$TWIN_GO_REPLACES")
  cached "$OTELCOL_TAG" "$h" && return 0
  log "go install $OCB_MOD"
  local gobin=$CACHE/bin; mkdir -p "$gobin"
  (cd "$CACHE" && GOWORK=off GOBIN=$gobin CGO_ENABLED=0 go install "$OCB_MOD")
  rm -rf "$ctx"; mkdir -p "$ctx"
  log "builder: generate and compile otelcol-contrib from $(basename "$manifest")"
  # The proxy here refuses the servicediscovery version loadbalancingexporter asks for
  # (used only by its AWS Cloud Map resolver, which no config of ours uses): the twin
  # pins the newest one it serves. The shipped manifest stays as upstream would build it.
  # loadbalancingexporter is older than the release (see the manifest): it asks for the
  # collector's root module at its own release, which still held packages that are modules
  # of their own in this one (an ambiguous import); the root module goes to this release.
  cp "$manifest" "$ctx/manifest.yaml"
  printf '%s\n' "replaces:" "$TWIN_GO_REPLACES" \
    "  - go.opentelemetry.io/collector => go.opentelemetry.io/collector v$OTELCOL_VERSION" >> "$ctx/manifest.yaml"
  # ocb writes go.mod/main.go into the output path, runs go mod tidy, then go build.
  GOWORK=off CGO_ENABLED=0 "$gobin/builder" --config="$ctx/manifest.yaml" --output-path="$ctx/src" \
    > "$ctx/builder.log" 2>&1 || { tail -30 "$ctx/builder.log" >&2; die "ocb failed (log: $ctx/builder.log)"; }
  cp "$ctx/src/otelcol-contrib" "$ctx/otelcol-contrib"
  cp "$TW/otelcol/config.yaml" /etc/ssl/certs/ca-certificates.crt "$ctx/"
  chmod 755 "$ctx/otelcol-contrib"; chmod 644 "$ctx/config.yaml" "$ctx/ca-certificates.crt"
  dbuild "$OTELCOL_TAG" "$h" "$TW/otelcol" "$ctx" "VERSION=$OTELCOL_VERSION"
}

# ---- 5. Jaeger v2 (2.13.0 standing in for the pinned version, see the top) ---------------
# As upstream's cmd/jaeger/Dockerfile: /cmd/jaeger/jaeger-linux, USER 10001, VOLUME /tmp,
# JAEGER_LISTEN_HOST=0.0.0.0; on the busybox twin (upstream: Alpine) for wget healthchecks.
# No `ui` build tag: the module has no built UI assets, so / serves upstream's
# placeholder page; the query API, OTLP receivers and Monitor API are the real ones.
build_jaeger() {
  local h ctx=$CACHE/jaeger dir
  h=$(hash_of "$(declare -f build_jaeger gobuild)" "$JAEGER_MOD" "$JAEGER_VERSION" "$(go version)" \
      "$TW/jaeger" "$(image_id "$BUSYBOX_TAG")")
  cached "$JAEGER_TAG" "$h" && return 0
  dir=$(mod_dir "$JAEGER_MOD"); [ -d "$dir" ] || die "could not download $JAEGER_MOD"
  rm -rf "$ctx"; mkdir -p "$ctx"
  # Upstream's scripts/makefiles/BuildInfo.mk stamping; the date is the release time.
  local p=github.com/jaegertracing/jaeger/internal/version date
  date=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' \
      "$(go env GOMODCACHE)/cache/download/${JAEGER_MOD%@*}/@v/${JAEGER_MOD#*@}.info")
  log "go build jaeger v$JAEGER_VERSION ($JAEGER_MOD, cmd/jaeger)"
  gobuild "$dir" "$ctx/jaeger-linux" ./cmd/jaeger "" \
    "-X $p.commitSHA=${JAEGER_MOD#*@} -X $p.latestVersion=v$JAEGER_VERSION -X $p.date=$date"
  cp "$dir/cmd/jaeger/sampling-strategies.json" "$dir/LICENSE" "$ctx/"
  chmod 644 "$ctx/sampling-strategies.json" "$ctx/LICENSE"
  dbuild "$JAEGER_TAG" "$h" "$TW/jaeger" "$ctx" "VERSION=$JAEGER_VERSION" "MODULE=$JAEGER_MOD" \
    "STANDS_IN_FOR=$JAEGER_PIN"
}

# ---- 5b. telemetrygen (load generator for bench/, same release as the collector) ---------
build_telemetrygen() {
  local h ctx=$CACHE/telemetrygen dir
  h=$(hash_of "$(declare -f build_telemetrygen gobuild)" "$TELEMETRYGEN_MOD" "$TELEMETRYGEN_PIN" "$(go version)" \
      "$TW/telemetrygen")
  cached "$TELEMETRYGEN_TAG" "$h" && return 0
  dir=$(mod_dir "$TELEMETRYGEN_MOD"); [ -d "$dir" ] || die "could not download $TELEMETRYGEN_MOD"
  rm -rf "$ctx"; mkdir -p "$ctx"
  log "go build telemetrygen ($TELEMETRYGEN_MOD)"
  gobuild "$dir" "$ctx/telemetrygen" . "" "-s -w"
  dbuild "$TELEMETRYGEN_TAG" "$h" "$TW/telemetrygen" "$ctx" "VERSION=$TELEMETRYGEN_VERSION" \
    "STANDS_IN_FOR=$TELEMETRYGEN_PIN"
}

# ---- 5c. Thanos (the scale-out profile) -----------------------------------------------------
# Built in the module as upstream's .promu.yml does (tags netgo, slicelabels; its go.mod's
# replace directives apply), with the newer toolchain its go.mod asks for.
build_thanos() {
  local h ctx=$CACHE/thanos dir
  h=$(hash_of "$(declare -f build_thanos gobuild prom_ldflags)" "$THANOS_MOD" "$THANOS_GOTOOLCHAIN" \
      "$TW/thanos" "$(image_id "$BUSYBOX_TAG")")
  cached "$THANOS_TAG" "$h" && return 0
  export GOTOOLCHAIN=$THANOS_GOTOOLCHAIN
  dir=$(mod_dir "$THANOS_MOD"); [ -d "$dir" ] || die "could not download $THANOS_MOD"
  rm -rf "$ctx"; mkdir -p "$ctx"
  local ld; ld=$(prom_ldflags "$THANOS_VERSION" "${THANOS_MOD#*@}" \
      "$(go env GOMODCACHE)/cache/download/${THANOS_MOD%@*}/@v/${THANOS_MOD#*@}.info")
  log "go build thanos ($THANOS_MOD, $(go version | cut -d' ' -f3))"
  gobuild "$dir" "$ctx/thanos" ./cmd/thanos netgo,slicelabels "$ld"
  unset GOTOOLCHAIN
  cp "$dir/LICENSE" "$ctx/"; chmod 644 "$ctx/LICENSE"
  dbuild "$THANOS_TAG" "$h" "$TW/thanos" "$ctx" "VERSION=$THANOS_VERSION"
}

# ---- 5d. node_exporter (the host profile) ---------------------------------------------------
# As upstream's .promu.yml: tags netgo osusergo static_build, promu's version stamping.
build_node_exporter() {
  local h ctx=$CACHE/node-exporter dir
  h=$(hash_of "$(declare -f build_node_exporter gobuild prom_ldflags)" "$NODE_EXPORTER_MOD" "$(go version)" \
      "$TW/node-exporter" "$(image_id "$BUSYBOX_TAG")")
  cached "$NODE_EXPORTER_TAG" "$h" && return 0
  dir=$(mod_dir "$NODE_EXPORTER_MOD"); [ -d "$dir" ] || die "could not download $NODE_EXPORTER_MOD"
  rm -rf "$ctx"; mkdir -p "$ctx"
  local ld; ld=$(prom_ldflags "$NODE_EXPORTER_VERSION" "${NODE_EXPORTER_MOD#*@}" \
      "$(go env GOMODCACHE)/cache/download/${NODE_EXPORTER_MOD%@*}/@v/${NODE_EXPORTER_MOD#*@}.info")
  log "go build node_exporter ($NODE_EXPORTER_MOD)"
  gobuild "$dir" "$ctx/node_exporter" . "netgo osusergo static_build" "$ld"
  cp "$dir/LICENSE" "$ctx/"; chmod 644 "$ctx/LICENSE"
  dbuild "$NODE_EXPORTER_TAG" "$h" "$TW/node-exporter" "$ctx" "VERSION=$NODE_EXPORTER_VERSION"
}

# ---- 5e. Telegraf (the containers profile) ----------------------------------------------------
# Telegraf's custom build (its Makefile's BUILDTAGS): `custom` plus one tag per plugin, so
# only the plugins telegraf/telegraf.conf uses are compiled in.
build_telegraf() {
  local h ctx=$CACHE/telegraf dir tags
  h=$(hash_of "$(declare -f build_telegraf gobuild)" "$TELEGRAF_MOD" "$TELEGRAF_PLUGINS" "$(go version)" \
      "$TW/telegraf" "$(image_id "$BUSYBOX_TAG")")
  cached "$TELEGRAF_TAG" "$h" && return 0
  dir=$(mod_dir "$TELEGRAF_MOD"); [ -d "$dir" ] || die "could not download $TELEGRAF_MOD"
  rm -rf "$ctx"; mkdir -p "$ctx"
  tags="custom ${TELEGRAF_PLUGINS}"
  log "go build telegraf ($TELEGRAF_MOD, plugins: $TELEGRAF_PLUGINS)"
  gobuild "$dir" "$ctx/telegraf" ./cmd/telegraf "$tags" \
    "-s -w -X github.com/influxdata/telegraf/internal.Version=$TELEGRAF_VERSION"
  # A default config that starts (the stack mounts its own over it).
  printf '%s\n' "# twins/build.sh: the stack mounts telegraf/telegraf.conf over this." "[agent]" \
    "  interval = \"10s\"" "[[outputs.prometheus_client]]" "  listen = \":9273\"" > "$ctx/telegraf.conf"
  cp "$dir/LICENSE" "$ctx/"; chmod 644 "$ctx/LICENSE" "$ctx/telegraf.conf"
  dbuild "$TELEGRAF_TAG" "$h" "$TW/telegraf" "$ctx" "VERSION=$TELEGRAF_VERSION" "PLUGINS=$TELEGRAF_PLUGINS"
}

# ---- 5f. The previous minor releases (the upgrade tier: tests/upgrade) ---------------------
# The same recipes with the previous pins (tests/upgrade/docker-compose.previous.yml), each
# in its own subshell, so the current ones' variables stay as they are.
build_prometheus_previous() {
  PROM_VERSION=$(version_of PROMETHEUS_PREVIOUS_IMAGE)
  IFS=. read -r _maj _min _pat <<<"$PROM_VERSION"
  PROM_MOD=github.com/prometheus/prometheus@v0.$((_maj * 100 + _min)).$_pat
  PROMETHEUS_TAG=twin/prometheus:v$PROM_VERSION
  build_prometheus
}
build_alertmanager_previous() {
  AM_VERSION=$(version_of ALERTMANAGER_PREVIOUS_IMAGE); AM_MOD=github.com/prometheus/alertmanager@v$AM_VERSION
  ALERTMANAGER_TAG=twin/alertmanager:v$AM_VERSION
  build_alertmanager
}
build_jaeger_previous() {
  JAEGER_PIN=$(version_of JAEGER_PREVIOUS_IMAGE)
  JAEGER_VERSION=$JAEGER_PREVIOUS_VERSION; JAEGER_MOD=$JAEGER_PREVIOUS_MOD; JAEGER_TAG=twin/jaeger:$JAEGER_VERSION
  build_jaeger
}
# The collector's manifest at the previous release: every module one release back (the
# contrib and core v0.x modules at the pin, the core v1.x ones, which move in step, one
# minor back too).
build_otelcol_previous() {
  local cur=$OTELCOL_VERSION v1 v1_prev
  OTELCOL_VERSION=$(version_of OTELCOL_PREVIOUS_IMAGE)
  OCB_MOD=go.opentelemetry.io/collector/cmd/builder@v$OTELCOL_VERSION
  OTELCOL_TAG=twin/otelcol-contrib:$OTELCOL_VERSION
  v1=$(sed -n 's/.* v\(1\.[0-9]*\.[0-9]*\)$/\1/p' "$OTELCOL_MANIFEST" | head -1)
  local cur_minor prev_minor v1_minor
  IFS=. read -r _ cur_minor _ <<<"$cur"; IFS=. read -r _ prev_minor _ <<<"$OTELCOL_VERSION"
  IFS=. read -r _ v1_minor _ <<<"$v1"
  v1_prev=1.$((v1_minor - (cur_minor - prev_minor))).0
  mkdir -p "$CACHE/otelcol-previous"
  # Without the receivers built on pkg/stanza (tcplog, filelog): the proxy here refuses
  # pkg/stanza at the previous release. The upgrade tier runs it without the containers'
  # log receiver (tests/upgrade/conftest.py); its queues on disk are what it is there for.
  sed -e "s/v$cur\$/v$OTELCOL_VERSION/" -e "s/v$cur /v$OTELCOL_VERSION /" -e "s/version: $cur\$/version: $OTELCOL_VERSION/" \
      -e "s/v$v1\$/v$v1_prev/" -e "s/v$v1 /v$v1_prev /" -e '/receiver\/tcplogreceiver\|receiver\/filelogreceiver/d' \
      "$OTELCOL_MANIFEST" > "$CACHE/otelcol-previous/builder-config.yaml"
  OTELCOL_MANIFEST=$CACHE/otelcol-previous/builder-config.yaml
  build_otelcol
}

# ---- 6. Python base (debootstrap) ----------------------------------------------------------
build_python_base() {
  local h ctx=$CACHE/python-base root
  local inc=python3,python3-venv,ca-certificates
  # Debian point releases change the tree: bust the cache weekly at most.
  h=$(hash_of "$(declare -f build_python_base)" "$SUITE" "$inc" "$DEBIAN_MIRROR" "$(date +%G-W%V)")
  cached "$PYBASE_TAG" "$h" && return 0
  root=$ctx/rootfs
  rm -rf "$ctx"; mkdir -p "$ctx"
  log "debootstrap --variant=minbase $SUITE (+$inc)"
  debootstrap --variant=minbase --include="$inc" "$SUITE" "$root" "$DEBIAN_MIRROR" \
    > "$ctx/debootstrap.log" 2>&1 || { tail -30 "$ctx/debootstrap.log" >&2; die "debootstrap failed"; }
  # Shrink: package caches and lists are useless in an offline image.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*.log \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*
  find "$root/usr/share/doc" -type f ! -name copyright -delete   # keep the licences
  tar -C "$root" --numeric-owner -c . | docker import \
    --change "LABEL io.twins.recipe=$h" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' - "$PYBASE_TAG" >/dev/null
  rm -rf "$root"   # 300 MB tree, rebuilt from scratch each time anyway
  log "$PYBASE_TAG imported: $(docker image inspect -f '{{.Size}}' "$PYBASE_TAG" | awk '{printf "%.1f MB", $1/1e6}')"
}

# ---- 7. demo image ---------------------------------------------------------------------------
# demo_app/ is owned elsewhere: its Dockerfile installs from demo_app/wheelhouse/ when
# wheels are there (containers have no network), so demo_app/fetch-wheels.sh fetches
# them on the host first, for the base image's Python.
build_demo() {
  local h pyver files
  [ -f "$ROOT/demo_app/Dockerfile" ] || { log "demo: demo_app/Dockerfile not there yet, skipped"; return 0; }
  # Inputs: the demo's sources as git sees them (not wheelhouse/, build/, *.egg-info,
  # which are derived from these and the base image's Python).
  files=$(cd "$ROOT" && { git ls-files -co --exclude-standard demo_app 2>/dev/null || find demo_app -type f; } \
          | grep -v -e '/wheelhouse/' -e '__pycache__' | LC_ALL=C sort)
  h=$(cd "$ROOT" && hash_of "$(declare -f build_demo)" "$(image_id "$PYBASE_TAG")" $files)
  cached "$DEMO_TAG" "$h" && return 0
  pyver=$(docker run --rm --network none "$PYBASE_TAG" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [ -f "$ROOT/demo_app/fetch-wheels.sh" ] || die "demo_app/fetch-wheels.sh is missing"
  log "demo: wheels for Python $pyver (demo_app/fetch-wheels.sh, on the host)"
  bash "$ROOT/demo_app/fetch-wheels.sh" "$pyver"
  log "docker build demo_app on $PYBASE_TAG"
  DOCKER_BUILDKIT=0 docker build --network none --build-arg "BASE_IMAGE=$PYBASE_TAG" \
    --label "io.twins.recipe=$h" -t "$DEMO_TAG" "$ROOT/demo_app" > "$CACHE/build-demo.log" 2>&1 \
    || { tail -30 "$CACHE/build-demo.log" >&2; die "docker build $DEMO_TAG failed"; }
  log "$DEMO_TAG built: $(docker image inspect -f '{{.Size}}' "$DEMO_TAG" | awk '{printf "%.1f MB", $1/1e6}')"
}

# ---- run ------------------------------------------------------------------------------------
run() {  # run NAME FN: one phase with its elapsed time
  wanted "$1" || return 0
  local t=$SECONDS
  log "== $1"
  "$2"
  log "== $1 done in $((SECONDS - t))s"
}
need_base() {  # images built FROM another twin need it even with --only
  docker image inspect "$1" >/dev/null 2>&1 || { wanted "$2" || run "$2" "build_${2//-/_}"; }
}
if wanted prometheus || wanted alertmanager || wanted jaeger || wanted thanos || wanted node-exporter \
   || wanted telegraf || wanted prometheus-previous || wanted alertmanager-previous || wanted jaeger-previous; then
  need_base "$BUSYBOX_TAG" busybox
fi
if wanted demo; then need_base "$PYBASE_TAG" python-base; fi

# ---- images.env: every twin that exists now (also from earlier --only runs) ----------
# Rewritten as each image is done, so a test runner started beside this build (.ci/run)
# sees an image as soon as it is there, and never one that is still being (re)built. A
# build that fails or is stopped leaves every image there is listed, as before it started
# (write_env --all).
declare -A finished=()
write_env() {
  local env_file=$TW/images.env req=() triple name var tag all=${1:-}
  {
    echo "# Written by twins/build.sh; source it to run the stack on the twins."
    for triple in prometheus:PROMETHEUS_IMAGE:$PROMETHEUS_TAG alertmanager:ALERTMANAGER_IMAGE:$ALERTMANAGER_TAG \
                  otelcol:OTELCOL_IMAGE:$OTELCOL_TAG telemetrygen:TELEMETRYGEN_IMAGE:$TELEMETRYGEN_TAG \
                  jaeger:JAEGER_IMAGE:$JAEGER_TAG thanos:THANOS_IMAGE:$THANOS_TAG \
                  node-exporter:NODE_EXPORTER_IMAGE:$NODE_EXPORTER_TAG telegraf:TELEGRAF_IMAGE:$TELEGRAF_TAG \
                  demo:DEMO_IMAGE:$DEMO_TAG \
                  prometheus-previous:PROMETHEUS_PREVIOUS_IMAGE:twin/prometheus:v$(version_of PROMETHEUS_PREVIOUS_IMAGE) \
                  alertmanager-previous:ALERTMANAGER_PREVIOUS_IMAGE:twin/alertmanager:v$(version_of ALERTMANAGER_PREVIOUS_IMAGE) \
                  otelcol-previous:OTELCOL_PREVIOUS_IMAGE:twin/otelcol-contrib:$(version_of OTELCOL_PREVIOUS_IMAGE) \
                  jaeger-previous:JAEGER_PREVIOUS_IMAGE:twin/jaeger:$JAEGER_PREVIOUS_VERSION; do
      name=${triple%%:*}; var=${triple#*:}; tag=${var#*:}; var=${var%%:*}
      # left to a later run, or not built yet in this one
      excepted "$name" && continue
      [ -z "$all" ] && wanted "$name" && [ -z "${finished[$name]:-}" ] && continue
      # only images this script built (they carry its recipe label)
      if [ -n "$(label_of "$tag")" ]; then echo "$var=$tag"; req+=("$var"); fi
    done
    # The demo twin is built above: compose must use it as is, not rebuild it (its default
    # base image cannot be pulled here).
    [[ " ${req[*]} " == *" DEMO_IMAGE "* ]] && echo "DEMO_PULL_POLICY=never"
    echo "REQUIRED_IMAGES=$(IFS=,; echo "${req[*]}")"
  } > "$env_file.tmp"
  mv "$env_file.tmp" "$env_file"
}
write_env
trap 'write_env --all' EXIT

run busybox build_busybox
# The Go twins, GO_LANES at a time (default 2: while one compiles, the next downloads its
# modules), beside the Python base and the demo (debootstrap and wheels: network and disk).
# The longest first; the ones only some tiers use (Thanos, the previous releases) last.
# Each runs in a subshell of its own; the first failure stops the others.
GO_LANES=${TWIN_GO_LANES:-2}
declare -A job_of=()
failed=()
settle() {  # settle PID STATUS: remember a failure, list a success
  if [ "$2" -eq 0 ]; then
    finished[${job_of[$1]}]=1
    [ "${job_of[$1]}" = python-chain ] && finished[demo]=1
    write_env
  else
    failed+=("${job_of[$1]}")
  fi
  unset "job_of[$1]"
}
reap() {  # reap: wait for the next background build to end
  local pid st=0
  wait -n -p pid || st=$?
  [ -n "${pid:-}" ] && settle "$pid" "$st"
  return 0
}
reap_all() {  # every build still owed (one that ended unseen by reap too: its status is kept)
  local pid st
  for pid in "${!job_of[@]}"; do st=0; wait "$pid" || st=$?; settle "$pid" "$st"; done
}
spawn() {  # spawn NAME CMD...: in the background
  "${@:2}" &
  job_of[$!]=$1
}
python_chain() { run python-base build_python_base && run demo build_demo; }
spawn python-chain python_chain
for name in jaeger otelcol prometheus alertmanager telegraf telemetrygen node-exporter \
            thanos prometheus-previous otelcol-previous jaeger-previous alertmanager-previous; do
  wanted "$name" || continue
  # slots: the Go lanes plus the Python chain while it runs
  while [ ${#failed[@]} -eq 0 ] && [ "$(jobs -rp | wc -l)" -ge $((GO_LANES + 1)) ]; do reap; done
  [ ${#failed[@]} -eq 0 ] || break
  spawn "$name" run "$name" "build_${name//-/_}"
done
reap_all
[ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]} (their logs above and in $CACHE)"

# Rebuilds leave the previous images untagged; drop those this script made (its label),
# silently keeping any a container still uses.
docker images -q -f dangling=true -f label=io.twins.recipe | xargs -r docker image rm >/dev/null 2>&1 || true

trap - EXIT  # every image is done: the list below is the whole one
write_env
log "wrote twins/images.env:"; sed 's/^/    /' "$TW/images.env"
log "all done in $((SECONDS - T0))s"
exit 0
}
