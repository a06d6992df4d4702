"""Flow D, the customer organization's side: sign an RS256 access token with
the private key of a PKCS#12 keystore (made with keytool, see
../java/make-keystore.sh) and call the dashboard with it as a Bearer token.

ssogate verifies the token with the keystore's certificate, which the
customer hands over (`keytool -exportcert -rfc`), and needs no session.

Run:
  pip install -r requirements.txt      # PyJWT, cryptography
  SSOGATE_URL=https://dash.example.com KEYSTORE=jde.p12 KEYSTORE_PASSWORD_FILE=jde.pass \
    python3 flow_d_bearer.py JDE_USER /api/orders        # prints the dashboard's answer
  python3 flow_d_bearer.py --token JDE_USER              # prints only the token (for curl)

ssogate config of the org (excerpt):
  accept_bearer: true
  accept_query_token: access_token        # optional: ?access_token=<JWT> on any URL
  keys: [{ alg: RS256, public_key_file: /etc/ssogate/orgs/jde.crt }]
"""

import os
import sys
import time
import urllib.error
import urllib.request
import uuid

import jwt  # PyJWT
from cryptography.hazmat.primitives.serialization import pkcs12

from ssogate_example import read_secret, required


def load_private_key():
    with open(required("KEYSTORE"), "rb") as f:
        data = f.read()
    password = read_secret(required("KEYSTORE_PASSWORD_FILE"))
    key, _certificate, _chain = pkcs12.load_key_and_certificates(data, password)
    if key is None:
        sys.exit("the keystore holds no private key")
    return key


def sign_token(principal: str) -> str:
    now = int(time.time())
    claims = {"sub": principal, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    headers = {"kid": os.environ["KEY_ID"]} if os.environ.get("KEY_ID") else None
    return jwt.encode(claims, load_private_key(), algorithm="RS256", headers=headers)


def call(path: str, token: str):
    url = required("SSOGATE_URL").rstrip("/") + path
    request = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--token":
        print(sign_token(sys.argv[2] if len(sys.argv) > 2 else "JDE_USER"))
        sys.exit(0)
    principal = sys.argv[1] if len(sys.argv) > 1 else "JDE_USER"
    path = sys.argv[2] if len(sys.argv) > 2 else "/"
    status, body = call(path, sign_token(principal))
    print(status)
    print(body)
    sys.exit(0 if status < 400 else 1)
