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

use super::Exchange;
use crate::config::Org;
use crate::metrics::{AuthMethod, AuthResult, Outcome};
use crate::redirect::safe_or;
use crate::replay;
use crate::reply::Reply;
use crate::session::{open_json, random_id, seal_json, session_cookie, Identity};
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
pub fn issue_code(x: &Exchange, grant: &CodeGrant) -> Option<String> {
    let sealed = seal_json(&x.config.session.key, CODE_SEAL_NAME, grant)?;
    Some(
        sealed
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_"),
    )
}

fn open_code(x: &Exchange, code: &str) -> Option<CodeGrant> {
    let mut sealed = code.replace('-', "+").replace('_', "/");
    while !sealed.len().is_multiple_of(4) {
        sealed.push('=');
    }
    STANDARD.decode(&sealed).ok()?;
    open_json(&x.config.session.key, CODE_SEAL_NAME, &sealed)
}

/// `POST /code`.
pub fn create(x: &mut Exchange, body: &[u8]) -> Reply {
    // The client credentials choose the org, not the Host.
    x.org = None;
    let Some((client_id, secret)) = basic_credentials(x) else {
        return unauthorized(x);
    };
    let Some(org) = x
        .config
        .orgs
        .iter()
        .find(|o| {
            o.code_flow
                .as_ref()
                .is_some_and(|c| c.client_id == client_id)
        })
        .cloned()
    else {
        x.auth = Some((AuthMethod::Code, AuthResult::UnknownOrg));
        return unauthorized(x);
    };
    x.org = Some(org.clone());
    let Some(flow) = &org.code_flow else {
        return unauthorized(x);
    };
    if !bool::from(secret.as_bytes().ct_eq(flow.client_secret.expose())) {
        x.auth = Some((AuthMethod::Code, AuthResult::BadSignature));
        return unauthorized(x);
    }
    if !org.enabled {
        x.outcome = Outcome::Forbidden;
        x.auth = Some((AuthMethod::Code, AuthResult::Disabled));
        return Reply::json(
            403,
            &json!({"error": "organization_disabled", "request_id": x.request_id}),
        );
    }
    let user = match CodeRequest::parse(body) {
        Ok(user) => user,
        Err((error, field)) => {
            x.auth = Some((AuthMethod::Code, AuthResult::BadClaims));
            return Reply::json(
                400,
                &json!({"error": error, "field": field, "request_id": x.request_id}),
            );
        }
    };
    let session_ttl = user.token_validity.map_or(org.session_ttl, |minutes| {
        minutes.clamp(MIN_VALIDITY_MINUTES, MAX_VALIDITY_MINUTES) * 60
    });
    let grant = CodeGrant {
        id: random_id(),
        expires_at: x.now + flow.code_ttl as i64,
        session_ttl,
        identity: user.identity(&org, &x.config.mapped_claims, x.now),
    };
    let Some(code) = issue_code(x, &grant) else {
        x.outcome = Outcome::Error;
        return x.error(500, "internal");
    };
    x.auth = Some((AuthMethod::Code, AuthResult::Ok));
    Reply::json(200, &json!({"code": code, "expires_in": flow.code_ttl}))
}

fn unauthorized(x: &mut Exchange) -> Reply {
    x.auth
        .get_or_insert((AuthMethod::Code, AuthResult::Malformed));
    Reply::json(
        401,
        &json!({"error": "invalid_client", "request_id": x.request_id}),
    )
    .header(http::header::WWW_AUTHENTICATE, "Basic realm=\"ssogate\"")
}

fn basic_credentials(x: &Exchange) -> Option<(String, String)> {
    let value = x
        .req
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
        let mut claims = Map::new();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                if mapped.iter().any(|m| m == name) {
                    claims.insert(name.to_owned(), value);
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
            claims,
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
pub async fn authorize(x: &mut Exchange<'_>) -> Reply {
    let Some(code) = x.facts.param("code") else {
        return x.refused(AuthMethod::Authorize, AuthResult::Malformed);
    };
    let Some(grant) = open_code(x, &code) else {
        return x.refused(AuthMethod::Authorize, AuthResult::Malformed);
    };
    let Some(org) = x.config.org(&grant.identity.org).cloned() else {
        return x.refused(AuthMethod::Authorize, AuthResult::UnknownOrg);
    };
    x.org = Some(org.clone());
    let routed = x.config.org_by_host(x.facts.host);
    if routed.is_some_and(|o| o.name != org.name) {
        return x.refused(AuthMethod::Authorize, AuthResult::UnknownOrg);
    }
    if !org.enabled {
        x.outcome = Outcome::Forbidden;
        x.auth = Some((AuthMethod::Authorize, AuthResult::Disabled));
        return x.error(403, "organization_disabled");
    }
    if grant.expires_at <= x.now {
        return x.refused(AuthMethod::Authorize, AuthResult::Expired);
    }
    match x
        .shared
        .replay
        .spend(&replay::code_key(&grant.id), grant.expires_at)
        .await
    {
        Ok(true) => {}
        Ok(false) => return x.refused(AuthMethod::Authorize, AuthResult::Replay),
        Err(e) => {
            tracing::error!(request_id = x.request_id, error = %e, "replay store unavailable");
            x.outcome = Outcome::Error;
            return x.error(503, "replay_store_unavailable");
        }
    }
    let mut identity = grant.identity;
    identity.issued_at = x.now;
    identity.expires_at = x.now + grant.session_ttl as i64;
    identity.session_id = random_id();
    let target = x.facts.param("redirectUrl");
    let target = safe_or(target.as_deref(), &org.home_path).to_owned();
    match session_cookie(&x.config.session, &identity) {
        Ok(cookie) => {
            x.auth = Some((AuthMethod::Authorize, AuthResult::Ok));
            Reply::redirect(target).cookie(cookie)
        }
        Err(e) => {
            tracing::warn!(request_id = x.request_id, org = %org.name, error = %e, "session refused");
            x.auth = Some((AuthMethod::Authorize, AuthResult::BadClaims));
            x.error(400, "session_too_large")
        }
    }
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
