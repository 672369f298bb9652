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

if [ -n "${PROMETHEUS_IMAGE:-}" ]; then
  echo "== $PROMETHEUS_IMAGE"
  v=$(docker run --rm --entrypoint promtool "$PROMETHEUS_IMAGE" --version 2>&1); expect "$v" "promtool, version 3.14.0"; ok "${v%%$'\n'*}"
  v=$(docker run --rm "$PROMETHEUS_IMAGE" --version 2>&1); expect "$v" "prometheus, version 3.14.0"; ok "${v%%$'\n'*}"
  v=$(docker image inspect -f '{{.Config.User}} {{json .Config.Entrypoint}} {{.Config.WorkingDir}}' "$PROMETHEUS_IMAGE")
  [ "$v" = 'nobody ["/bin/prometheus"] /prometheus' ] || fail "layout: $v"; ok "user/entrypoint/workdir: $v"
  docker run --rm --entrypoint promtool "$PROMETHEUS_IMAGE" check config /etc/prometheus/prometheus.yml >/dev/null
  ok "promtool check config on the default config"
  c=$(docker run -d -p 127.0.0.1::9090 "$PROMETHEUS_IMAGE"); started+=("$c")
  p=$(port_of "$c" 9090)
  wait_http "http://127.0.0.1:$p/-/ready" || { docker logs "$c" | tail -20; fail "prometheus not ready"; }
  ok "host: GET /-/ready -> $(curl -fsS "http://127.0.0.1:$p/-/ready")"
  v=$(docker exec "$c" wget -qO- http://localhost:9090/-/healthy); ok "inside: busybox wget /-/healthy -> $v"
  v=$(curl -fsS "http://127.0.0.1:$p/api/v1/status/buildinfo"); expect "$v" '"version":"3.14.0"'; ok "API buildinfo: $v"
fi

if [ -n "${ALERTMANAGER_IMAGE:-}" ]; then
  echo "== $ALERTMANAGER_IMAGE"
  v=$(docker run --rm --entrypoint amtool "$ALERTMANAGER_IMAGE" --version 2>&1); expect "$v" "amtool, version 0.34.0"; ok "${v%%$'\n'*}"
  v=$(docker run --rm "$ALERTMANAGER_IMAGE" --version 2>&1); expect "$v" "alertmanager, version 0.34.0"; ok "${v%%$'\n'*}"
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
  v=$(docker run --rm "$OTELCOL_IMAGE" --version); expect "$v" "version 0.159.0"; ok "$v"
  v=$(docker image inspect -f '{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$OTELCOL_IMAGE")
  [ "$v" = '10001:10001 ["/otelcol-contrib"] ["--config","/etc/otelcol-contrib/config.yaml"]' ] || fail "layout: $v"
  ok "user/entrypoint/cmd: $v"
  v=$(docker run --rm "$OTELCOL_IMAGE" components)
  for n in otlp memory_limiter batch span_metrics otlp_grpc otlp_http debug health_check; do
    expect "$v" "name: $n"
  done
  ok "components: $(grep -o 'name: [a-z_]*' <<<"$v" | sed 's/name: //' | tr '\n' ' ')"
  docker run --rm "$OTELCOL_IMAGE" validate --config=/etc/otelcol-contrib/config.yaml; ok "validate: image default config"
  # Every component in one pipeline graph, the way the stack wires them.
  docker run --rm --entrypoint /otelcol-contrib "$OTELCOL_IMAGE" validate --config=yaml:"$(cat <<'EOF'
extensions: {health_check: {endpoint: "0.0.0.0:13133"}}
receivers: {otlp: {protocols: {grpc: {endpoint: "0.0.0.0:4317"}, http: {endpoint: "0.0.0.0:4318"}}}}
processors: {memory_limiter: {check_interval: 1s, limit_mib: 200}, batch: {}}
connectors: {span_metrics: {}}
exporters:
  otlp_grpc: {endpoint: "jaeger:4317", tls: {insecure: true}}
  otlp_http: {endpoint: "http://prometheus:9090/api/v1/otlp"}
  debug: {}
service:
  extensions: [health_check]
  pipelines:
    traces: {receivers: [otlp], processors: [memory_limiter, batch], exporters: [otlp_grpc, span_metrics]}
    metrics: {receivers: [otlp, span_metrics], processors: [memory_limiter, batch], exporters: [otlp_http]}
    logs: {receivers: [otlp], processors: [memory_limiter, batch], exporters: [debug]}
EOF
)"
  ok "validate: all eight components wired as in the stack"
  if [ -f otel-collector/config.yml ]; then  # the manifest must cover the stack's config
    docker run --rm -v "$PWD/otel-collector:/etc/otelcol:ro" "$OTELCOL_IMAGE" validate --config=/etc/otelcol/config.yml
    ok "validate: the stack's otel-collector/config.yml"
  fi
  c=$(docker run -d -p 127.0.0.1::13133 "$OTELCOL_IMAGE"); started+=("$c")
  p=$(port_of "$c" 13133)
  wait_http "http://127.0.0.1:$p/" || { docker logs "$c" | tail -20; fail "collector health_check not answering"; }
  ok "host: health_check -> $(curl -fsS "http://127.0.0.1:$p/")"
fi

if [ -n "${JAEGER_IMAGE:-}" ]; then
  echo "== $JAEGER_IMAGE"
  docker run --rm "$JAEGER_IMAGE" --version
fi

if [ -n "${DEMO_IMAGE:-}" ]; then
  echo "== $DEMO_IMAGE"
  v=$(docker run --rm --network none --entrypoint python "$DEMO_IMAGE" -c \
      'import sys, demo_app, opentelemetry.sdk, prometheus_client; print(sys.version.split()[0])')
  ok "imports demo_app with the pinned deps on Python $v (no network)"
fi
echo "all twin checks passed"
