"""Flow B, the customer organization's side: a portal page that embeds the
dashboard in an iframe, signed in from the start (IdP-initiated).

For each page view, the server signs a fresh JWT for the signed-in user
(HS256, the org's secret) and sets the iframe's src to
  <SSOGATE_URL>/_sso/jwt?jwt=<JWT>
ssogate checks the token, sets its session cookie and lands the iframe on
the org's home_path.

Run:
  pip install -r requirements.txt      # PyJWT
  SSOGATE_URL=https://dash.example.com ORG_ID=acme ORG_SECRET_FILE=acme.secret \
    PORT=4001 python3 flow_b_iframe.py

ssogate config of the org (excerpt):
  allowed_origins: [https://portal.acme.com]   # this page's origin: it may frame the dashboard
  principal_claim: email
  org_claim: orgId
  keys: [{ alg: HS256, secret_file: /etc/ssogate/orgs/acme.secret }]
"""

import html
import os
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlsplit

import jwt  # PyJWT

from ssogate_example import read_secret, required

SSOGATE = required("SSOGATE_URL").rstrip("/")
ORG_ID = os.environ.get("ORG_ID", "acme")
SECRET = read_secret(required("ORG_SECRET_FILE"))
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "4001"))


def current_user(request):
    """Replace with your portal's own session lookup."""
    return {"email": "dave@acme.example", "firstName": "Dave", "lastName": "Bowman", "role": "admin"}


def sign_token(user) -> str:
    now = int(time.time())
    claims = {
        "email": user["email"],
        "orgId": ORG_ID,
        "firstName": user["firstName"],
        "lastName": user["lastName"],
        "role": user["role"],
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


class PortalPage(BaseHTTPRequestHandler):
    def do_GET(self):
        if urlsplit(self.path).path != "/":
            self.send_error(404)
            return
        src = f"{SSOGATE}/_sso/jwt?jwt={quote(sign_token(current_user(self)), safe='')}"
        body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Portal</title></head>
<body>
<h1>Your dashboard</h1>
<iframe id="dashboard" src="{html.escape(src)}" style="width:100%;height:40em;border:0"></iframe>
</body></html>
""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Cache-Control", "no-store")  # the page holds a token
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer((HOST, PORT), PortalPage)
    print(f"flow B portal page on http://{HOST}:{PORT}/", flush=True)
    server.serve_forever()
