#!/bin/sh
# Starts Alertmanager on a copy of its config file with the email relay settings taken
# from the environment, because Alertmanager itself reads no environment variables in
# its configuration. Unset or empty variables leave the file's own values (the alert
# sink), so the file stays valid and testable as it is.
#
#   ALERTMANAGER_SMTP_SMARTHOST   -> global.smtp_smarthost   (host:port of the relay)
#   ALERTMANAGER_SMTP_FROM        -> global.smtp_from
#   ALERTMANAGER_SMTP_USERNAME    -> global.smtp_auth_username
#   ALERTMANAGER_SMTP_REQUIRE_TLS -> global.smtp_require_tls (true once a relay is set)
#   ALERTMANAGER_EMAIL_TO         -> every email_configs `to`
# The password never passes through here: smtp_auth_password_file is a compose secret.
#
#   entrypoint.sh [alertmanager flags]   render, then run Alertmanager
#   entrypoint.sh --render-only          render (make reload does, before SIGHUP)
# ALERTMANAGER_CONFIG_FILE picks the file in /etc/alertmanager (the drill profile).
set -eu
src=/etc/alertmanager/${ALERTMANAGER_CONFIG_FILE:-alertmanager.yml}
out=${ALERTMANAGER_RENDERED_CONFIG:-/alertmanager/rendered-config.yml}
if [ -n "${ALERTMANAGER_SMTP_SMARTHOST:-}" ]; then
  : "${ALERTMANAGER_SMTP_REQUIRE_TLS:=true}"   # a relay outside the compose network
fi
export ALERTMANAGER_SMTP_REQUIRE_TLS="${ALERTMANAGER_SMTP_REQUIRE_TLS:-}"

awk -v dir="$(dirname "$src")" '
  BEGIN {
    key["smtp_smarthost"] = "ALERTMANAGER_SMTP_SMARTHOST"
    key["smtp_from"] = "ALERTMANAGER_SMTP_FROM"
    key["smtp_auth_username"] = "ALERTMANAGER_SMTP_USERNAME"
    key["smtp_require_tls"] = "ALERTMANAGER_SMTP_REQUIRE_TLS"
    key["to"] = "ALERTMANAGER_EMAIL_TO"
  }
  match($0, /^[ -]*[a-z_]+:/) {
    name = substr($0, RSTART, RLENGTH); sub(/^[ -]*/, "", name); sub(/:$/, "", name)
    if ((name in key) && ENVIRON[key[name]] != "") {
      print substr($0, 1, RSTART + RLENGTH - 1) " " ENVIRON[key[name]]
      next
    }
  }
  # Template paths are relative to the config file: keep them pointing at its folder.
  /^ *- [^\/ ][^ ]*\.tmpl *$/ { sub(/- /, "- " dir "/") }
  { print }
' "$src" > "$out.tmp"
mv "$out.tmp" "$out"

[ "${1:-}" = "--render-only" ] && exit 0
exec /bin/alertmanager --config.file="$out" "$@"
