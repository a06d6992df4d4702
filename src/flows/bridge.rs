//! Flow E, the cross-domain bridge: a page an allowed origin embeds in an
//! iframe. With a session here, it hands the parent window a single-use code
//! through `postMessage`, addressed to the org's allowed origins only; the
//! parent redeems it at its own `/authorize?code=`.

use serde_json::json;

use super::code::{issue_code, CodeGrant};
use crate::auth::{self, Check};
use crate::ctx::Request;
use crate::decision::{Decision, Refusal, Verdict};
use crate::metrics::{AuthMethod, AuthResult};
use crate::reply::{page, Reply};
use crate::session::random_id;

/// How long a bridge code lives when the org has no `code_flow` to say.
const DEFAULT_CODE_TTL: u64 = 60;

/// `GET /bridge`.
pub async fn bridge(req: &Request<'_>) -> Decision {
    let router = req.router();
    let routed = router.by_host(req.facts.host);
    let cookie = auth::session_cookie(req, routed.map(|o| o.as_ref())).await;
    let identity = match &cookie {
        Check::Valid(identity) => Some(identity),
        Check::Limited(limited) => {
            let org = routed
                .or_else(|| router.for_endpoint(req.facts.host))
                .cloned();
            return Decision::refuse(org, Refusal::RateLimited(*limited));
        }
        Check::Refused(_) | Check::Absent => None,
    };
    // Without a session the page still speaks for an org (Host, then
    // default_org), so that its portal learns it must sign the user in.
    let org = identity
        .and_then(|id| router.by_name(&id.org))
        .or_else(|| router.for_endpoint(req.facts.host))
        .cloned();
    let seen = cookie.auth(AuthMethod::Cookie);
    if let Err(refusal) = req.ensure_framing_allowed(org.as_deref()) {
        return Decision::refuse(org, refusal);
    }

    let (message, auth) = match (identity, &org) {
        (Some(identity), Some(org)) => {
            let code_ttl = org
                .code_flow
                .as_ref()
                .map_or(DEFAULT_CODE_TTL, |c| c.code_ttl);
            // The session the code opens elsewhere never outlives this one.
            let left = (identity.expires_at - req.now).max(1) as u64;
            let mut carried = (**identity).clone();
            carried.session_id = String::new();
            let grant = CodeGrant {
                id: random_id(),
                expires_at: req.now + code_ttl as i64,
                session_ttl: left,
                identity: carried,
            };
            let code = match issue_code(req.config, &grant) {
                Ok(code) => code,
                Err(e) => {
                    tracing::error!(request_id = req.request_id, error = %e, "cannot issue a code");
                    return Decision::refuse(Some(org.clone()), Refusal::Internal)
                        .with_credential(seen)
                        .uncounted();
                }
            };
            let message = json!({"type": "ssogate:code", "org": org.name, "code": code, "expires_in": code_ttl});
            (message, Some((AuthMethod::Code, AuthResult::Ok)))
        }
        _ => (json!({"type": "ssogate:unauthenticated"}), seen),
    };
    let origins = org.as_ref().map_or(&[][..], |o| &o.allowed_origins[..]);
    let nonce = random_id();
    let script = format!(
        "(function(){{var m={};var o={};for(var i=0;i<o.length;i++){{window.parent.postMessage(m,o[i]);}}}})();",
        script_json(&message),
        script_json(&json!(origins)),
    );
    let body = page(
        "ssogate bridge",
        &format!("<p>Single sign-on bridge.</p><script nonce=\"{nonce}\">{script}</script>"),
    );
    let reply = Reply::html(200, body).header(
        http::header::CONTENT_SECURITY_POLICY,
        format!("default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'"),
    );
    Decision::new(org, Verdict::Answer(reply))
        .with_credential(auth)
        .uncounted()
}

/// JSON safe to inline in a `<script>`: nothing in it can close the tag.
fn script_json(value: &serde_json::Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    #[test]
    fn inline_json_cannot_close_the_script() {
        let v = serde_json::json!({"a": "</script><script>alert(1)</script>"});
        assert!(!super::script_json(&v).contains("</script>"));
    }
}
