// Flow B, the customer organization's side: a portal page that embeds the
// dashboard in an iframe, signed in from the start (IdP-initiated).
//
// For each page view, the server signs a fresh JWT for the signed-in user
// (HS256, the org's secret) and sets the iframe's src to
//   <SSOGATE_URL>/_sso/jwt?jwt=<JWT>
// ssogate checks the token, sets its session cookie and lands the iframe on
// the org's home_path.
//
// Run:
//   npm install            # jsonwebtoken
//   SSOGATE_URL=https://dash.example.com ORG_ID=acme ORG_SECRET_FILE=acme.secret \
//     PORT=4001 node flow-b-iframe.js
//
// ssogate config of the org (excerpt):
//   allowed_origins: [https://portal.acme.com]   # this page's origin: it may frame the dashboard
//   principal_claim: email
//   org_claim: orgId
//   keys: [{ alg: HS256, secret_file: /etc/ssogate/orgs/acme.secret }]
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const jwt = require('jsonwebtoken');

const SSOGATE = required('SSOGATE_URL').replace(/\/+$/, '');
const ORG_ID = process.env.ORG_ID || 'acme';
const SECRET = readSecret(required('ORG_SECRET_FILE'));
const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number(process.env.PORT || 4001);

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`set ${name}`);
    process.exit(1);
  }
  return value;
}

function readSecret(path) {
  let bytes = fs.readFileSync(path);
  if (bytes.slice(-2).toString() === '\r\n') bytes = bytes.slice(0, -2);
  else if (bytes.slice(-1).toString() === '\n') bytes = bytes.slice(0, -1);
  return bytes;
}

// Replace with your portal's own session lookup.
function currentUser(_req) {
  return { email: 'bob@acme.example', firstName: 'Bob', lastName: 'Builder', role: 'viewer' };
}

function signToken(user) {
  return jwt.sign(
    {
      email: user.email,
      orgId: ORG_ID,
      firstName: user.firstName,
      lastName: user.lastName,
      role: user.role,
      jti: crypto.randomUUID(),
    },
    SECRET,
    { algorithm: 'HS256', expiresIn: '2m' },
  );
}

function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

const server = http.createServer((req, res) => {
  if (req.method !== 'GET' || new URL(req.url, 'http://portal.invalid').pathname !== '/') {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    return;
  }
  const src = `${SSOGATE}/_sso/jwt?jwt=${encodeURIComponent(signToken(currentUser(req)))}`;
  res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store', // the page holds a token
  });
  res.end(`<!doctype html>
<html><head><meta charset="utf-8"><title>Portal</title></head>
<body>
<h1>Your dashboard</h1>
<iframe id="dashboard" src="${escapeHtml(src)}" style="width:100%;height:40em;border:0"></iframe>
</body></html>
`);
});

server.listen(PORT, HOST, () => console.log(`flow B portal page on http://${HOST}:${PORT}/`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
