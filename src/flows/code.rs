//! Flow C, one-time codes: the customer's backend buys a code for a user
//! over a back channel (`POST /code`, HTTP Basic client credentials), the
//! browser redeems it once (`GET /authorize?code=`). Codes are sealed with
//! the session secret, so any replica (or another ssogate deployment sharing
//! the secret, for the bridge) can redeem them; the replay store makes each
//! one single-use.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use subtle::ConstantTimeEq;

use crate::config::{Config, Org};
use crate::ctx::Request;
use crate::decision::{Decision, Refusal, Verdict};
use crate::metrics::{AuthMethod, AuthResult};
use crate::redirect::safe_or;
use crate::replay;
use crate::reply::Reply;
use crate::route::ensure_enabled;
use crate::session::{open_json, random_id, seal_json, Identity, SealError};
use crate::signin::{self, SpendOnce};
use crate::token::has_control;

/// Sealed codes are bound to this name, so no cookie can pass for a code.
const CODE_SEAL_NAME: &str = "ssogate-code";
/// `tokenValidity` is minutes, clamped to this range.
const MIN_VALIDITY_MINUTES: u64 = 5;
const MAX_VALIDITY_MINUTES: u64 = 1440;

/// What a code carries: the user, the session lifetime it grants, and its
/// own identity and deadline.
#[derive(Debug, Serialize, Deserialize)]
pub struct CodeGrant {
    #[serde(rename = "i")]
    pub id: String,
    #[serde(rename = "x")]
    pub expires_at: i64,
    #[serde(rename = "t")]
    pub session_ttl: u64,
    #[serde(rename = "u")]
    pub identity: Identity,
}

/// A URL-safe code for `grant`.
pub fn issue_code(config: &Config, grant: &CodeGrant) -> Result<String, SealError> {
    let sealed = seal_json(&config.session.key, CODE_SEAL_NAME, grant)?;
    Ok(sealed
        .trim_end_matches('=')
        .replace('+', "-")
        .replace('/', "_"))
}

fn open_code(config: &Config, code: &str) -> Option<CodeGrant> {
    let mut sealed = code.replace('-', "+").replace('_', "/");
    while !sealed.len().is_multiple_of(4) {
        sealed.push('=');
    }
    STANDARD.decode(&sealed).ok()?;
    open_json(&config.session.key, CODE_SEAL_NAME, &sealed)
}

/// `POST /code`: the client credentials choose the org, not the Host.
pub fn create(req: &Request) -> Decision {
    let Some((client_id, secret)) = basic_credentials(req) else {
        return Decision::refuse(None, Refusal::InvalidClient(AuthResult::Malformed));
    };
    let Some((org, flow)) = req.router().by_client_id(&client_id) else {
        return Decision::refuse(None, Refusal::InvalidClient(AuthResult::UnknownOrg));
    };
    let refuse = |refusal| Decision::refuse(Some(org.clone()), refusal);
    if let Err(refusal) = req.ensure_framing_allowed(Some(org)) {
        return refuse(refusal);
    }
    if !bool::from(secret.as_bytes().ct_eq(flow.client_secret.expose())) {
        return refuse(Refusal::InvalidClient(AuthResult::BadSignature));
    }
    if let Err(refusal) = ensure_enabled(org, Some(AuthMethod::Code)) {
        return refuse(refusal);
    }
    let user = match CodeRequest::parse(&req.body) {
        Ok(user) => user,
        Err((error, field)) => return refuse(Refusal::BadField { error, field }),
    };
    let session_ttl = user.token_validity.map_or(org.session_ttl, |minutes| {
        minutes.clamp(MIN_VALIDITY_MINUTES, MAX_VALIDITY_MINUTES) * 60
    });
    let grant = CodeGrant {
        id: random_id(),
        expires_at: req.now + flow.code_ttl as i64,
        session_ttl,
        identity: user.identity(org, &req.config.mapped_claims, req.now),
    };
    let code = match issue_code(req.config, &grant) {
        Ok(code) => code,
        Err(e) => {
            tracing::error!(request_id = req.request_id, error = %e, "cannot issue a code");
            return refuse(Refusal::Internal);
        }
    };
    let reply = Reply::json(200, &json!({"code": code, "expires_in": flow.code_ttl}));
    Decision::new(Some(org.clone()), Verdict::Answer(reply))
        .with_credential(Some((AuthMethod::Code, AuthResult::Ok)))
}

fn basic_credentials(req: &Request) -> Option<(String, String)> {
    let value = req
        .head
        .headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

/// The user as the customer's backend describes it. Unknown fields are
/// ignored; a missing or ill-typed known one is named in the 400.
struct CodeRequest {
    email: String,
    username: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    groups: Option<Vec<Value>>,
    token_validity: Option<u64>,
}

type FieldFault = (&'static str, &'static str);

impl CodeRequest {
    fn parse(body: &[u8]) -> Result<Self, FieldFault> {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) else {
            return Err(("invalid_json", "body"));
        };
        let email = text(&map, "emailId")?.ok_or(("missing_field", "emailId"))?;
        if email.is_empty() {
            return Err(("invalid_field", "emailId"));
        }
        let groups = match map.get("readerGroupIds") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let ok = items.iter().all(|v| match v {
                    Value::String(s) => !has_control(s),
                    Value::Number(_) => true,
                    _ => false,
                });
                if !ok {
                    return Err(("invalid_field", "readerGroupIds"));
                }
                Some(items.clone())
            }
            Some(_) => return Err(("invalid_field", "readerGroupIds")),
        };
        let token_validity = match map.get("tokenValidity") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or(("invalid_field", "tokenValidity"))?),
        };
        Ok(CodeRequest {
            email,
            username: text(&map, "username")?,
            first_name: text(&map, "firstName")?,
            last_name: text(&map, "lastName")?,
            groups,
            token_validity,
        })
    }

    /// The session identity; only the claims identity headers read are kept.
    fn identity(self, org: &Org, mapped: &[String], now: i64) -> Identity {
        let mut claims = Vec::new();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                if mapped.iter().any(|m| m == name) {
                    claims.push((name.to_owned(), value));
                }
            }
        };
        put("sub", Some(Value::from(self.email.clone())));
        put("email", Some(Value::from(self.email.clone())));
        put("name", self.username.map(Value::from));
        put("given_name", self.first_name.map(Value::from));
        put("family_name", self.last_name.map(Value::from));
        put("groups", self.groups.map(Value::from));
        Identity {
            org: org.name.clone(),
            principal: self.email,
            claims: claims.into_iter().collect(),
            issued_at: now,
            expires_at: now,
            session_id: String::new(),
        }
    }
}

fn text(map: &Map<String, Value>, field: &'static str) -> Result<Option<String>, FieldFault> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !has_control(s) && s.len() <= 1024 => Ok(Some(s.clone())),
        Some(_) => Err(("invalid_field", field)),
    }
}

/// `GET /authorize?code=C&redirectUrl=PATH`.
pub async fn authorize(req: &Request<'_>) -> Decision {
    let method = AuthMethod::Authorize;
    let router = req.router();
    let refused = |result| {
        let org = router.for_endpoint(req.facts.host).cloned();
        req.refuse_login(org, Refusal::Token(method, result))
    };
    let Some(code) = req.facts.param("code") else {
        return refused(AuthResult::Malformed);
    };
    let Some(grant) = open_code(req.config, &code) else {
        return refused(AuthResult::Malformed);
    };
    let Some(org) = router.by_name(&grant.identity.org).cloned() else {
        return refused(AuthResult::UnknownOrg);
    };
    if let Err(refusal) = req.ensure_framing_allowed(Some(&org)) {
        return Decision::refuse(Some(org), refusal);
    }
    // A code redeemed on another org's Host is refused.
    let routed = router.by_host(req.facts.host);
    if routed.is_some_and(|o| o.name != org.name) {
        return Decision::refuse(Some(org), Refusal::Token(method, AuthResult::UnknownOrg));
    }
    if let Err(refusal) = ensure_enabled(&org, Some(method)) {
        return Decision::refuse(Some(org), refusal);
    }
    if grant.expires_at <= req.now {
        return Decision::refuse(Some(org), Refusal::Token(method, AuthResult::Expired));
    }
    let once = SpendOnce {
        key: replay::code_key(&grant.id),
        until: grant.expires_at,
    };
    let mut identity = grant.identity;
    identity.issued_at = req.now;
    identity.expires_at = req.now + grant.session_ttl as i64;
    let target = req.facts.param("redirectUrl");
    let target = safe_or(target.as_deref(), &org.home_path);
    let created = signin::create_session(req, &org, method, identity, Some(once), target).await;
    Decision::session(org, method, created)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_requests_name_the_faulty_field() {
        let fault = |body: &str| CodeRequest::parse(body.as_bytes()).err();
        assert_eq!(fault("nope"), Some(("invalid_json", "body")));
        assert_eq!(fault("{}"), Some(("missing_field", "emailId")));
        assert_eq!(
            fault(r#"{"emailId": 5}"#),
            Some(("invalid_field", "emailId"))
        );
        assert_eq!(
            fault(r#"{"emailId": "a@x", "readerGroupIds": "g"}"#),
            Some(("invalid_field", "readerGroupIds"))
        );
        assert_eq!(
            fault(r#"{"emailId": "a@x", "tokenValidity": "5"}"#),
            Some(("invalid_field", "tokenValidity"))
        );
        assert_eq!(
            fault(r#"{"emailId": "a\nx"}"#),
            Some(("invalid_field", "emailId"))
        );
        assert_eq!(fault(r#"{"emailId": "a@x", "other": {"x": 1}}"#), None);
    }
}
