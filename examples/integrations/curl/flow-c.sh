#!/usr/bin/env bash
# Flow C, the customer organization's backend, with curl: ask ssogate for a
# one-time code for a user and print the URL that signs the browser in with it
# (a web backend answers the browser with a 302 to that URL).
#
#   SSOGATE_URL=https://dash.example.com CLIENT_ID=acme-reader CLIENT_SECRET_FILE=acme.client \
#     ./flow-c.sh frank@acme.example /reports
#
# ssogate config of the org (excerpt):
#   code_flow:
#     client_id: acme-reader
#     client_secret_file: /etc/ssogate/orgs/acme.client
set -euo pipefail
: "${SSOGATE_URL:?set SSOGATE_URL}" "${CLIENT_ID:?set CLIENT_ID}" "${CLIENT_SECRET_FILE:?set CLIENT_SECRET_FILE}"
email=${1:-frank@acme.example}
path=${2:-/}
secret=$(cat "$CLIENT_SECRET_FILE") # $(...) drops the trailing newline, as ssogate does

# The credentials go to curl on its standard input, not on its command line
# (where any local user could read them with ps).
answer=$(printf 'user = "%s:%s"\n' "$CLIENT_ID" "$secret" |
  curl --fail --silent --show-error --config - \
    --header 'Content-Type: application/json' \
    --data "{\"emailId\": \"$email\", \"readerGroupIds\": [\"readers\"], \"tokenValidity\": 60}" \
    "${SSOGATE_URL%/}/_sso/code")
code=$(printf '%s' "$answer" | sed -n 's/.*"code" *: *"\([A-Za-z0-9_-]*\)".*/\1/p')
[[ -n $code ]] || { echo "flow-c: no code in ssogate's answer" >&2; exit 1; }

# The code is URL-safe; the path is percent-encoded where a query value needs it.
printf '%s/_sso/authorize?code=%s&redirectUrl=%s\n' "${SSOGATE_URL%/}" "$code" \
  "$(printf '%s' "$path" | sed 's/%/%25/g; s/&/%26/g; s/?/%3F/g; s/#/%23/g; s/+/%2B/g; s/ /%20/g')"
