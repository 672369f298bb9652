#!/bin/sh
# Starts Prometheus with a remote_write section added to its config file, because
# Prometheus reads no environment variables in its configuration. Used only when
# PROMETHEUS_REMOTE_WRITE_URL is set (docker-compose.remote-write.yml); the shipped
# prometheus.yml stays as it is.
#
#   PROMETHEUS_REMOTE_WRITE_URL       e.g. https://mimir.example.com/api/v1/push
#   PROMETHEUS_REMOTE_WRITE_USERNAME  set: basic auth with the password file below;
#                                     unset: the file's content is a bearer token (if any)
#   PROMETHEUS_REMOTE_WRITE_PASSWORD  in .env: compose hands it over as a file
#
# The rendered file lives on the data volume beside links to everything else in
# /etc/prometheus, so its relative paths (rules/, scrape_configs.yml) still resolve and
# `make reload` (SIGHUP) still picks up rule edits.
set -eu
: "${PROMETHEUS_REMOTE_WRITE_URL:?is not set}"
secret=/run/secrets/prometheus_remote_write_password
dir=/prometheus/rendered-config
mkdir -p "$dir"
for f in /etc/prometheus/*; do ln -sfn "$f" "$dir/"; done

# The command's --config.file, pointed at the rendered copy.
src=/etc/prometheus/prometheus.yml
for arg; do
  shift
  case $arg in
    --config.file=*) src=${arg#*=}; set -- "$@" "--config.file=$dir/$(basename "$src")" ;;
    *) set -- "$@" "$arg" ;;
  esac
done
out=$dir/$(basename "$src")
rm -f "$out"
{
  cat "$src"
  printf '\n# Added by remote-write.sh from PROMETHEUS_REMOTE_WRITE_URL.\nremote_write:\n'
  printf '  - name: forward\n    url: "%s"\n' "$PROMETHEUS_REMOTE_WRITE_URL"
  # runbook_base is for this stack's alert links, not a label on every copied series.
  printf '    write_relabel_configs:\n      - action: labeldrop\n        regex: runbook_base\n'
  if [ -n "${PROMETHEUS_REMOTE_WRITE_USERNAME:-}" ]; then
    printf '    basic_auth:\n      username: "%s"\n      password_file: %s\n' "$PROMETHEUS_REMOTE_WRITE_USERNAME" "$secret"
  elif [ -s "$secret" ]; then
    printf '    authorization:\n      credentials_file: %s\n' "$secret"
  fi
} > "$out.tmp"
mv "$out.tmp" "$out"
exec /bin/prometheus "$@"
