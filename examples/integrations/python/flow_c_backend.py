"""Flow C, the customer organization's backend: ask ssogate for a one-time
code for a user, then send the browser to the sign-in URL it makes.

  POST <SSOGATE_URL>/_sso/code   (HTTP Basic client_id:client_secret, JSON user)
  -> {"code": "...", "expires_in": 60}
  browser -> <SSOGATE_URL>/_sso/authorize?code=<code>&redirectUrl=/reports

Run (prints the sign-in URL; a web backend answers the browser with a 302 to it):
  SSOGATE_URL=https://dash.example.com CLIENT_ID=acme-reader CLIENT_SECRET_FILE=acme.client \
    python3 flow_c_backend.py erin@acme.example /reports

Standard library only. ssogate config of the org (excerpt):
  code_flow:
    client_id: acme-reader
    client_secret_file: /etc/ssogate/orgs/acme.client
"""

import base64
import json
import os
import sys
import urllib.request
from urllib.parse import urlencode

from ssogate_example import read_secret, required

SSOGATE = required("SSOGATE_URL").rstrip("/")
CLIENT_ID = required("CLIENT_ID")
CLIENT_SECRET = read_secret(required("CLIENT_SECRET_FILE")).decode()


def sign_in_url(user: dict, redirect_path: str = "/") -> str:
    credentials = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    request = urllib.request.Request(
        SSOGATE + "/_sso/code",
        data=json.dumps(user).encode(),
        method="POST",
        headers={"Authorization": "Basic " + credentials, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # raises on 4xx/5xx
        code = json.load(response)["code"]
    return SSOGATE + "/_sso/authorize?" + urlencode({"code": code, "redirectUrl": redirect_path})


if __name__ == "__main__":
    email = sys.argv[1] if len(sys.argv) > 1 else "erin@acme.example"
    path = sys.argv[2] if len(sys.argv) > 2 else "/"
    user = {
        "emailId": email,
        "username": os.environ.get("USERNAME_CLAIM", email.split("@")[0]),
        "firstName": "Erin",
        "lastName": "Example",
        "readerGroupIds": ["readers"],
        "tokenValidity": 60,  # minutes of dashboard session (5..1440)
    }
    print(sign_in_url(user, path))
