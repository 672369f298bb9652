#!/bin/sh
# Starts Alertmanager on a copy of its config file (and of its templates) with settings
# taken from the environment, because Alertmanager itself reads no environment variables
# in its configuration. Unset or empty variables leave the files' own values (the alert
# sink), so the files stay valid and testable as they are. Only the stack's own values are
# replaced, never a receiver you added:
#
#   ALERTMANAGER_SMTP_SMARTHOST   -> global.smtp_smarthost   (host:port of the relay)
#   ALERTMANAGER_SMTP_FROM        -> global.smtp_from
#   ALERTMANAGER_SMTP_USERNAME    -> global.smtp_auth_username
#   ALERTMANAGER_SMTP_REQUIRE_TLS -> global.smtp_require_tls (true once a relay is set)
#   ALERTMANAGER_EMAIL_TO         -> `to: oncall@stack.local` (the shipped recipient)
#   ALERTMANAGER_WEBHOOK_URL      -> `url: http://alert-sink:8090/webhook` (the shipped webhook)
#   GRAFANA_URL                   -> the Grafana links in templates/notifications.tmpl
#                                    (default there: Alertmanager's host, port 3000)
# The password never passes through here: smtp_auth_password_file is a compose secret.
#
#   entrypoint.sh [alertmanager flags]   render, then run Alertmanager
#   entrypoint.sh --render-only          render (make reload does, before SIGHUP)
# ALERTMANAGER_WEB_CONFIG_FILE (the stack shared): TLS and a login, see the end.
# ALERTMANAGER_CONFIG_FILE picks the file in /etc/alertmanager (the drill profile).
set -eu
src=/etc/alertmanager/${ALERTMANAGER_CONFIG_FILE:-alertmanager.yml}
out=${ALERTMANAGER_RENDERED_CONFIG:-/alertmanager/rendered-config.yml}
if [ -n "${ALERTMANAGER_SMTP_SMARTHOST:-}" ]; then
  : "${ALERTMANAGER_SMTP_REQUIRE_TLS:=true}"   # a relay outside the compose network
fi
export ALERTMANAGER_SMTP_REQUIRE_TLS="${ALERTMANAGER_SMTP_REQUIRE_TLS:-}"

templates=$(dirname "$out")/rendered-templates
mkdir -p "$templates"
awk -v dir="$(dirname "$src")" -v templates="$templates" '
  BEGIN {
    # global keys: replaced whatever their value
    key["smtp_smarthost"] = "ALERTMANAGER_SMTP_SMARTHOST"
    key["smtp_from"] = "ALERTMANAGER_SMTP_FROM"
    key["smtp_auth_username"] = "ALERTMANAGER_SMTP_USERNAME"
    key["smtp_require_tls"] = "ALERTMANAGER_SMTP_REQUIRE_TLS"
    # receivers: only the shipped values
    value["oncall@stack.local"] = "ALERTMANAGER_EMAIL_TO"
    value["http://alert-sink:8090/webhook"] = "ALERTMANAGER_WEBHOOK_URL"
  }
  match($0, /^[ -]*[a-z_]+:/) {
    name = substr($0, RSTART, RLENGTH); sub(/^[ -]*/, "", name); sub(/:$/, "", name)
    rest = substr($0, RSTART + RLENGTH); gsub(/^ +| +$/, "", rest)
    if ((name in key) && ENVIRON[key[name]] != "") {
      print substr($0, 1, RSTART + RLENGTH - 1) " " ENVIRON[key[name]]
      next
    }
    if ((rest in value) && ENVIRON[value[rest]] != "") {
      print substr($0, 1, RSTART + RLENGTH - 1) " " ENVIRON[value[rest]]
      next
    }
  }
  # Templates: the rendered copies (below), which sit in their own folder.
  /^ *- [^\/ ][^ ]*\.tmpl *$/ { sub(/- [^ ]*\//, "- "); sub(/- /, "- " templates "/") }
  { print }
' "$src" > "$out.tmp"
mv "$out.tmp" "$out"

# The templates, with Grafana's address where GRAFANA_URL is set.
for t in "$(dirname "$src")"/templates/*.tmpl; do
  if [ -n "${GRAFANA_URL:-}" ]; then
    sed "s|^{{ define \"stack.grafana.base\" }}.*{{ end }}\$|{{ define \"stack.grafana.base\" }}${GRAFANA_URL%/}{{ end }}|" "$t"
  else
    cat "$t"
  fi > "$templates/.$(basename "$t").new"
  mv -f "$templates/.$(basename "$t").new" "$templates/$(basename "$t")"
done

[ "${1:-}" = "--render-only" ] && exit 0
# The stack shared (docker-compose.auth.yml): TLS and the login of ALERTMANAGER_WEB_CONFIG_FILE,
# and https in the external URL.
if [ -n "${ALERTMANAGER_WEB_CONFIG_FILE:-}" ]; then
  for arg; do
    shift
    case $arg in
      --web.external-url=http://*) set -- "$@" "--web.external-url=https://${arg#*=http://}" ;;
      *) set -- "$@" "$arg" ;;
    esac
  done
  set -- "$@" "--web.config.file=$ALERTMANAGER_WEB_CONFIG_FILE"
fi
exec /bin/alertmanager --config.file="$out" "$@"
