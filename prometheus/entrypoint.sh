#!/bin/sh
# Starts Prometheus after preparing the things its configuration cannot say itself
# (Prometheus reads no environment variables there, and cannot see compose profiles):
#
# 1. The scrape targets of the optional parts (profiles/<profile>.yml: the demo, your host,
#    your containers) are handed to their jobs (file discovery, scrape_configs.yml) only
#    while their compose profile is on: COMPOSE_PROFILES (.env; `demo` by default). With a
#    part switched off it has no target, so nothing of it shows down or pages. The files
#    go to the data volume, which this process may write (the config folder is mounted
#    read-only); the jobs watch them, so no restart is needed.
#
# 2. With PROMETHEUS_REMOTE_WRITE_URL set (docker-compose.remote-write.yml), a remote_write
#    section is added to a rendered copy of the config file:
#      PROMETHEUS_REMOTE_WRITE_URL       e.g. https://mimir.example.com/api/v1/push
#      PROMETHEUS_REMOTE_WRITE_USERNAME  set: basic auth with the password file below;
#                                        unset: the file's content is a bearer token (if any)
#      PROMETHEUS_REMOTE_WRITE_PASSWORD  in .env: compose hands it over as a file
#    The copy lives on the data volume beside links to everything else in /etc/prometheus,
#    so its relative paths (rules/, scrape_configs.yml) still resolve and `make reload`
#    (SIGHUP) still picks up rule edits. Unset, the shipped file is used as it is.
#
# 3. With PROMETHEUS_WEB_CONFIG_FILE set (the stack shared: docker-compose.auth.yml), it
#    serves TLS and asks for the login that file holds (--web.config.file), its external
#    URL says https, and the config file is its *.auth.yml variant (scripts/profiles.py:
#    the same, but its scrapes of itself and Alertmanager, and its alerts, log in).
set -eu
conf=/etc/prometheus

if [ -n "${PROMETHEUS_WEB_CONFIG_FILE:-}" ]; then
  for arg; do
    shift
    case $arg in
      --config.file=*.yml)
        auth=${arg%.yml}.auth.yml
        [ -f "${auth#*=}" ] || { echo "entrypoint.sh: no ${auth#*=} (scripts/profiles.py writes it)" >&2; exit 1; }
        set -- "$@" "$auth" ;;
      --web.external-url=http://*) set -- "$@" "--web.external-url=https://${arg#*=http://}" ;;
      *) set -- "$@" "$arg" ;;
    esac
  done
  set -- "$@" "--web.config.file=$PROMETHEUS_WEB_CONFIG_FILE"
fi

sd=/prometheus/sd
mkdir -p "$sd"
for targets in "$conf"/profiles/*.yml; do
  profile=$(basename "$targets" .yml)
  case ",${COMPOSE_PROFILES:-}," in
    *,"$profile",*|*,\*,*) cp "$targets" "$sd/.$profile.new" && mv -f "$sd/.$profile.new" "$sd/$profile.yml" ;;
    *) rm -f "$sd/$profile.yml" ;;
  esac
done

if [ -n "${PROMETHEUS_REMOTE_WRITE_URL:-}" ]; then
  secret=/run/secrets/prometheus_remote_write_password
  dir=/prometheus/rendered-config
  mkdir -p "$dir"
  for f in "$conf"/*; do ln -sfn "$f" "$dir/"; done
  # The command's --config.file, pointed at the rendered copy.
  src=$conf/prometheus.yml
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
    printf '\n# Added by entrypoint.sh from PROMETHEUS_REMOTE_WRITE_URL.\nremote_write:\n'
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
fi
exec /bin/prometheus "$@"
