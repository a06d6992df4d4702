#!/usr/bin/env bash
# Flow D, the customer organization's key: a PKCS#12 keystore made with
# keytool (as Oracle JDE and other Java systems keep their signing keys), and
# the certificate that the customer hands to the dashboard's operators.
#
#   ./make-keystore.sh [DIR]
#     DIR/jde.pass  the keystore password (kept if it exists; 32 random characters otherwise)
#     DIR/jde.p12   the keystore: an RSA 2048 key pair under the alias $KEY_ALIAS (default jde)
#     DIR/jde.crt   its certificate, PEM: ssogate's `public_key_file` for the org
#
# Signers: FlowDBearer.java (JDK only), ../python/flow_d_bearer.py.
set -euo pipefail
dir=${1:-.}
alias=${KEY_ALIAS:-jde}
mkdir -p "$dir"
cd "$dir"
umask 077
if [[ ! -s jde.pass ]]; then
  pass=$(head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')
  printf '%s\n' "${pass:0:32}" >jde.pass
fi
rm -f jde.p12 jde.crt
keytool -genkeypair -alias "$alias" -keyalg RSA -keysize 2048 -sigalg SHA256withRSA \
  -validity "${VALIDITY_DAYS:-365}" -dname "CN=$alias token signer" \
  -storetype PKCS12 -keystore jde.p12 -storepass:file jde.pass 2>/dev/null
keytool -exportcert -rfc -alias "$alias" -storetype PKCS12 -keystore jde.p12 \
  -storepass:file jde.pass -file jde.crt 2>/dev/null
chmod 644 jde.crt
echo "made $dir/jde.p12 (alias $alias) and $dir/jde.crt"
