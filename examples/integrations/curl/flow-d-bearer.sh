#!/usr/bin/env bash
# Flow D with curl: a token from the keystore's signer, sent as a Bearer token.
# ssogate keeps no session: every call carries its token.
#
#   SSOGATE_URL=https://dash.example.com KEYSTORE=jde.p12 KEYSTORE_PASSWORD_FILE=jde.pass \
#     ./flow-d-bearer.sh JDE_USER /api/orders
#
# The token comes from ../java/FlowDBearer.java (JDK only) or, with
# SIGNER=python, ../python/flow_d_bearer.py.
set -euo pipefail
: "${SSOGATE_URL:?set SSOGATE_URL}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
user=${1:-JDE_USER}
path=${2:-/}
if [[ ${SIGNER:-java} == python ]]; then
  token=$("${PYTHON:-python3}" "$here/../python/flow_d_bearer.py" --token "$user")
else
  token=$(java "$here/../java/FlowDBearer.java" --token "$user")
fi
# The header goes to curl on its standard input, not on its command line.
printf 'header = "Authorization: Bearer %s"\n' "$token" |
  curl --silent --show-error --config - --write-out '\n%{http_code}\n' "${SSOGATE_URL%/}$path"
