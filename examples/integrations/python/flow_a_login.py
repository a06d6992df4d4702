"""Flow A, the customer organization's side: the login endpoint that ssogate
sends browsers to (the org's `login_url` in ssogate's config).

A browser without a dashboard session arrives here as
  GET /sso/dash?ssoCallback=<SSOGATE_URL>/_sso/callback?state=N&redirectPath=/reports
This endpoint knows the user from your portal's own login, signs a
short-lived JWT with the org's HS256 secret and redirects back to
ssoCallback with `token=<JWT>` added. ssogate checks the token, sets its
session cookie and returns the browser to /reports. When the session ends,
the same round trip renews it without the user noticing.

Run:
  pip install -r requirements.txt      # PyJWT
  SSOGATE_URL=https://dash.example.com ORG_ID=acme ORG_SECRET_FILE=acme.secret \
    PORT=4000 python3 flow_a_login.py

ssogate config of the org (excerpt):
  login_url: https://portal.acme.com/sso/dash
  org_claim: orgId
  keys: [{ alg: HS256, secret_file: /etc/ssogate/orgs/acme.secret }]
"""

import os
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

import jwt  # PyJWT

from ssogate_example import read_secret, required

SSOGATE = urlsplit(required("SSOGATE_URL"))
ORG_ID = os.environ.get("ORG_ID", "acme")
SECRET = read_secret(required("ORG_SECRET_FILE"))
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "4000"))


def current_user(request):
    """Replace with your portal's own session lookup (None when nobody is
    signed in). This example treats every visitor as one demo user."""
    return {"id": "carol", "email": "carol@acme.example", "name": "Carol Danvers", "groups": ["readers"]}


def sign_token(user) -> str:
    now = int(time.time())
    claims = {
        "sub": user["id"],
        "email": user["email"],
        "name": user["name"],
        "groups": user["groups"],
        "orgId": ORG_ID,
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),  # ssogate accepts each token once
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


def callback_allowed(raw: str) -> bool:
    """Tokens go only to the dashboard's own callback: never to any URL a request names."""
    url = urlsplit(raw)
    return (url.scheme, url.netloc, url.path) == (SSOGATE.scheme, SSOGATE.netloc, "/_sso/callback")


class LoginEndpoint(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlsplit(self.path)
        if url.path != "/sso/dash":
            return self.reply(404, "not found\n")
        callback = parse_qs(url.query).get("ssoCallback", [""])[0]
        if not callback_allowed(callback):
            return self.reply(400, "bad ssoCallback\n")
        user = current_user(self)
        if user is None:
            # Your own login page, which comes back here afterwards.
            return self.redirect("/login?next=" + quote(self.path, safe=""))
        separator = "&" if "?" in callback else "?"
        self.redirect(callback + separator + "token=" + sign_token(user))

    def redirect(self, location: str):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def reply(self, status: int, text: str):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass  # the request line holds ssoCallback; log paths only if you log


if __name__ == "__main__":
    server = ThreadingHTTPServer((HOST, PORT), LoginEndpoint)
    print(f"flow A login endpoint on http://{HOST}:{PORT}/sso/dash", flush=True)
    server.serve_forever()
