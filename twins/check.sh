#!/usr/bin/env bash
# Smoke-proves the twin images named in twins/images.env (run after twins/build.sh):
# version stamps, the upstream entrypoint/user/paths, readiness over HTTP from the host
# and with busybox wget from inside (as a compose healthcheck does), and the validators.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f twins/images.env ] || { echo "no twins/images.env; run bash twins/build.sh" >&2; exit 1; }
set -a; . twins/images.env; set +a

ok() { echo "  ok: $*"; }
fail() { echo "  FAIL: $*" >&2; exit 1; }
started=()
cleanup() { [ ${#started[@]} -eq 0 ] || docker rm -f "${started[@]}" >/dev/null 2>&1 || true; }
trap cleanup EXIT
# wait_http URL: poll from the host for up to 60 s
wait_http() { for _ in $(seq 60); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 1; done; return 1; }
port_of() { docker port "$1" "$2" | head -1 | sed 's/.*://'; }
expect() { grep -q -- "$2" <<<"$1" || fail "expected '$2' in: $1"; }
# The version an image claims: its tag (twin/prometheus:v1.2.3 -> 1.2.3).
tag_version() { local t=${1##*:}; echo "${t#v}"; }

if [ -n "${PROMETHEUS_IMAGE:-}" ]; then
  echo "== $PROMETHEUS_IMAGE"
  want=$(tag_version "$PROMETHEUS_IMAGE")
  v=$(docker run --rm --entrypoint promtool "$PROMETHEUS_IMAGE" --version 2>&1); expect "$v" "promtool, version $want"; ok "${v%%$'\n'*}"
  v=$(docker run --rm "$PROMETHEUS_IMAGE" --version 2>&1); expect "$v" "prometheus, version $want"; ok "${v%%$'\n'*}"
  v=$(docker image inspect -f '{{.Config.User}} {{json .Config.Entrypoint}} {{.Config.WorkingDir}}' "$PROMETHEUS_IMAGE")
  [ "$v" = 'nobody ["/bin/prometheus"] /prometheus' ] || fail "layout: $v"; ok "user/entrypoint/workdir: $v"
  docker run --rm --entrypoint promtool "$PROMETHEUS_IMAGE" check config /etc/prometheus/prometheus.yml >/dev/null
  ok "promtool check config on the default config"
  c=$(docker run -d -p 127.0.0.1::9090 "$PROMETHEUS_IMAGE"); started+=("$c")
  p=$(port_of "$c" 9090)
  wait_http "http://127.0.0.1:$p/-/ready" || { docker logs "$c" | tail -20; fail "prometheus not ready"; }
  ok "host: GET /-/ready -> $(curl -fsS "http://127.0.0.1:$p/-/ready")"
  v=$(docker exec "$c" wget -qO- http://localhost:9090/-/healthy); ok "inside: busybox wget /-/healthy -> $v"
  v=$(curl -fsS "http://127.0.0.1:$p/api/v1/status/buildinfo"); expect "$v" "\"version\":\"$want\""; ok "API buildinfo: $v"
fi

if [ -n "${ALERTMANAGER_IMAGE:-}" ]; then
  echo "== $ALERTMANAGER_IMAGE"
  want=$(tag_version "$ALERTMANAGER_IMAGE")
  v=$(docker run --rm --entrypoint amtool "$ALERTMANAGER_IMAGE" --version 2>&1); expect "$v" "amtool, version $want"; ok "${v%%$'\n'*}"
  v=$(docker run --rm "$ALERTMANAGER_IMAGE" --version 2>&1); expect "$v" "alertmanager, version $want"; ok "${v%%$'\n'*}"
  v=$(docker image inspect -f '{{.Config.User}} {{json .Config.Entrypoint}} {{.Config.WorkingDir}}' "$ALERTMANAGER_IMAGE")
  [ "$v" = 'nobody ["/bin/alertmanager"] /alertmanager' ] || fail "layout: $v"; ok "user/entrypoint/workdir: $v"
  docker run --rm --entrypoint amtool "$ALERTMANAGER_IMAGE" check-config /etc/alertmanager/alertmanager.yml >/dev/null
  ok "amtool check-config on the default config"
  c=$(docker run -d -p 127.0.0.1::9093 "$ALERTMANAGER_IMAGE"); started+=("$c")
  p=$(port_of "$c" 9093)
  wait_http "http://127.0.0.1:$p/-/ready" || { docker logs "$c" | tail -20; fail "alertmanager not ready"; }
  ok "host: GET /-/ready -> $(curl -fsS "http://127.0.0.1:$p/-/ready")"
  v=$(docker exec "$c" wget -qO- http://localhost:9093/-/healthy); ok "inside: busybox wget /-/healthy -> $v"
  v=$(curl -fsS "http://127.0.0.1:$p/api/v2/status" | grep -o '"version":"[^"]*"'); ok "API v2 status: $v"
fi

if [ -n "${OTELCOL_IMAGE:-}" ]; then
  echo "== $OTELCOL_IMAGE"
  v=$(docker run --rm "$OTELCOL_IMAGE" --version); expect "$v" "version $(tag_version "$OTELCOL_IMAGE")"; ok "$v"
  v=$(docker image inspect -f '{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$OTELCOL_IMAGE")
  [ "$v" = '10001:10001 ["/otelcol-contrib"] ["--config","/etc/otelcol-contrib/config.yaml"]' ] || fail "layout: $v"
  ok "user/entrypoint/cmd: $v"
  # (tests/config/test_collector_build.py checks the list against the configs.)
  ok "components: $(docker run --rm "$OTELCOL_IMAGE" components | sed -n 's/^ *- name: \([a-z_]*\)$/\1/p' | tr '\n' ' ')"
  docker run --rm "$OTELCOL_IMAGE" validate --config=/etc/otelcol-contrib/config.yaml; ok "validate: image default config"
  for cfg in otel-collector/config*.yml; do  # every collector config of the folder
    # the user's additions and the scale-out agent's layer: merged over config.yml (below);
    # the shared stack's variant reads STACK_AUTH's files (make validate mounts a sample)
    case $cfg in *.extras.yml|*.example.yml|*/config.agent.yml|*/config.auth.yml) continue ;; esac
    docker run --rm -v "$PWD/otel-collector:/etc/otelcol:ro" "$OTELCOL_IMAGE" validate --config="/etc/otelcol/${cfg##*/}"
    ok "validate: $cfg"
  done
  docker run --rm -v "$PWD/otel-collector:/etc/otelcol:ro" "$OTELCOL_IMAGE" validate \
    --config=/etc/otelcol/config.yml --config=/etc/otelcol/config.agent.yml
  ok "validate: otel-collector/config.yml + config.agent.yml"
  # config.extras.yml is the user's (make up writes it from this example)
  docker run --rm -v "$PWD/otel-collector:/etc/otelcol:ro" "$OTELCOL_IMAGE" validate \
    --config=/etc/otelcol/config.yml --config=/etc/otelcol/config.extras.example.yml
  ok "validate: otel-collector/config.yml + config.extras.example.yml"
  c=$(docker run -d -p 127.0.0.1::13133 "$OTELCOL_IMAGE"); started+=("$c")
  p=$(port_of "$c" 13133)
  wait_http "http://127.0.0.1:$p/" || { docker logs "$c" | tail -20; fail "collector health_check not answering"; }
  ok "host: health_check -> $(curl -fsS "http://127.0.0.1:$p/")"
fi

if [ -n "${JAEGER_IMAGE:-}" ]; then
  echo "== $JAEGER_IMAGE"
  want=$(tag_version "$JAEGER_IMAGE")
  v=$(docker run --rm "$JAEGER_IMAGE" version 2>/dev/null); expect "$v" "\"gitVersion\":\"v$want\""; ok "version: $v"
  v=$(docker image inspect -f '{{.Config.User}} {{json .Config.Entrypoint}} {{index .Config.Labels "io.twins.stands-in-for"}}' "$JAEGER_IMAGE")
  expect "$v" '10001 \["/cmd/jaeger/jaeger-linux"\]'; ok "user/entrypoint, $v"
  docker run --rm --network none -v "$PWD/jaeger:/etc/jaeger:ro" "$JAEGER_IMAGE" validate --config=/etc/jaeger/jaeger.yml >/dev/null
  ok "jaeger validate: the stack's jaeger/jaeger.yml"
  # Badger writes under /var/lib/jaeger: a named volume in compose, a writable tmpfs here.
  c=$(docker run -d -p 127.0.0.1::16686 -v "$PWD/jaeger:/etc/jaeger:ro" -e JAEGER_PROMETHEUS_URL=http://127.0.0.1:1 \
      --mount type=tmpfs,destination=/var/lib/jaeger,tmpfs-mode=1777 \
      "$JAEGER_IMAGE" --config=/etc/jaeger/jaeger.yml); started+=("$c")
  for _ in $(seq 60); do docker exec "$c" wget -qO- http://127.0.0.1:13133/status >/dev/null 2>&1 && break; sleep 1; done
  v=$(docker exec "$c" wget -qO- http://127.0.0.1:13133/status) || { docker logs "$c" | tail -20; fail "jaeger not healthy"; }
  ok "inside: busybox wget 127.0.0.1:13133/status -> ${v:0:80}"
  p=$(port_of "$c" 16686)
  wait_http "http://127.0.0.1:$p/api/services" || fail "jaeger query API not answering"
  ok "host: query API /api/services -> $(curl -fsS "http://127.0.0.1:$p/api/services")"
fi

if [ -n "${TELEMETRYGEN_IMAGE:-}" ]; then
  echo "== $TELEMETRYGEN_IMAGE"
  v=$(docker run --rm "$TELEMETRYGEN_IMAGE" --help 2>&1 | head -3); expect "$v" "Telemetrygen simulates"; ok "${v%%$'\n'*}"
fi

if [ -n "${DEMO_IMAGE:-}" ]; then
  echo "== $DEMO_IMAGE"
  v=$(docker run --rm --network none --entrypoint python "$DEMO_IMAGE" -c \
      'import sys, demo_app, opentelemetry.sdk, prometheus_client; print(sys.version.split()[0])')
  ok "imports demo_app with the pinned deps on Python $v (no network)"
fi
echo "all twin checks passed"
