//! Flow E, the cross-domain bridge: a page an allowed origin embeds in an
//! iframe. With a session here, it hands the parent window a single-use code
//! through `postMessage`, addressed to the org's allowed origins only; the
//! parent redeems it at its own `/authorize?code=`.

use serde_json::json;

use super::code::{issue_code, CodeGrant};
use super::Exchange;
use crate::gate;
use crate::metrics::{AuthMethod, AuthResult};
use crate::reply::{page, Reply};
use crate::session::random_id;

/// How long a bridge code lives when the org has no `code_flow` to say.
const DEFAULT_CODE_TTL: u64 = 60;

/// `GET /bridge`.
pub async fn bridge(x: &mut Exchange<'_>) -> Reply {
    let routed = x.config.org_by_host(x.facts.host).cloned();
    let identity = gate::cookie_identity(x, routed.as_deref()).await;
    // Without a session the page still speaks for an org (Host, then
    // default_org), so that its portal learns it must sign the user in.
    let org = identity
        .as_ref()
        .and_then(|id| x.config.org(&id.org))
        .or(routed.as_ref())
        .or_else(|| x.config.route(x.facts.host, "/"))
        .cloned();
    x.org = org.clone();
    let origins = org
        .as_ref()
        .map(|o| o.allowed_origins.clone())
        .unwrap_or_default();

    let message = match (&identity, &org) {
        (Some(identity), Some(org)) => {
            let code_ttl = org
                .code_flow
                .as_ref()
                .map_or(DEFAULT_CODE_TTL, |c| c.code_ttl);
            // The session the code opens elsewhere never outlives this one.
            let left = (identity.expires_at - x.now).max(1) as u64;
            let mut carried = (**identity).clone();
            carried.session_id = String::new();
            let grant = CodeGrant {
                id: random_id(),
                expires_at: x.now + code_ttl as i64,
                session_ttl: left,
                identity: carried,
            };
            let Some(code) = issue_code(x, &grant) else {
                return x.error(500, "internal");
            };
            x.auth = Some((AuthMethod::Code, AuthResult::Ok));
            json!({"type": "ssogate:code", "org": org.name, "code": code, "expires_in": code_ttl})
        }
        _ => json!({"type": "ssogate:unauthenticated"}),
    };
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
    Reply::html(200, body).header(
        http::header::CONTENT_SECURITY_POLICY,
        format!("default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'"),
    )
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
