// Flow A, the customer organization's side: the login endpoint that ssogate
// sends browsers to (the org's `login_url` in ssogate's config).
//
// A browser without a dashboard session arrives here as
//   GET /sso/dash?ssoCallback=<SSOGATE_URL>/_sso/callback?state=N&redirectPath=/reports
// This endpoint knows the user from your portal's own login, signs a
// short-lived JWT with the org's HS256 secret and redirects back to
// ssoCallback with `token=<JWT>` added. ssogate checks the token, sets its
// session cookie and returns the browser to /reports. When the session ends,
// the same round trip renews it without the user noticing.
//
// Run:
//   npm install            # jsonwebtoken
//   SSOGATE_URL=https://dash.example.com ORG_ID=acme ORG_SECRET_FILE=acme.secret \
//     PORT=4000 node flow-a-login.js
//
// ssogate config of the org (excerpt):
//   login_url: https://portal.acme.com/sso/dash
//   org_claim: orgId
//   keys: [{ alg: HS256, secret_file: /etc/ssogate/orgs/acme.secret }]
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const jwt = require('jsonwebtoken');

const SSOGATE = new URL(required('SSOGATE_URL'));
const ORG_ID = process.env.ORG_ID || 'acme';
const SECRET = readSecret(required('ORG_SECRET_FILE'));
const HOST = process.env.HOST || '127.0.0.1';
const PORT = Number(process.env.PORT || 4000);

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`set ${name}`);
    process.exit(1);
  }
  return value;
}

// The secret exactly as ssogate reads it: the file's bytes, one trailing newline removed.
function readSecret(path) {
  let bytes = fs.readFileSync(path);
  if (bytes.slice(-2).toString() === '\r\n') bytes = bytes.slice(0, -2);
  else if (bytes.slice(-1).toString() === '\n') bytes = bytes.slice(0, -1);
  return bytes;
}

// Replace with your portal's own session lookup (return null when nobody is
// signed in). This example treats every visitor as one demo user.
function currentUser(_req) {
  return { id: 'alice', email: 'alice@acme.example', name: 'Alice Liddell', groups: ['readers', 'admins'] };
}

function signToken(user) {
  return jwt.sign(
    {
      sub: user.id,
      email: user.email,
      name: user.name,
      groups: user.groups,
      orgId: ORG_ID,
      jti: crypto.randomUUID(), // ssogate accepts each token once
    },
    SECRET,
    { algorithm: 'HS256', expiresIn: '2m' }, // adds iat and exp
  );
}

// Tokens go only to the dashboard's own callback: never to any URL a request names.
function callbackUrl(raw) {
  let url;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  return url.origin === SSOGATE.origin && url.pathname === '/_sso/callback' ? url : null;
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://portal.invalid');
  if (req.method !== 'GET' || url.pathname !== '/sso/dash') {
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    return;
  }
  const callback = callbackUrl(url.searchParams.get('ssoCallback') || '');
  if (!callback) {
    res.writeHead(400, { 'Content-Type': 'text/plain' }).end('bad ssoCallback\n');
    return;
  }
  const user = currentUser(req);
  if (!user) {
    // Your own login page, which comes back here afterwards.
    res.writeHead(302, { Location: `/login?next=${encodeURIComponent(req.url)}` }).end();
    return;
  }
  callback.searchParams.append('token', signToken(user));
  res.writeHead(302, { Location: callback.toString(), 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' });
  res.end();
});

server.listen(PORT, HOST, () => console.log(`flow A login endpoint on http://${HOST}:${PORT}/sso/dash`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
