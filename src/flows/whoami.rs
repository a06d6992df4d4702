//! `GET /_sso/whoami`: the identity the app would see, for scripts.

use serde_json::json;

use super::Exchange;
use crate::gate;
use crate::metrics::AuthMethod;
use crate::reply::Reply;

pub async fn whoami(x: &mut Exchange<'_>) -> Reply {
    // Only a Host route binds /_sso/ endpoints to an org: a path route or
    // default_org would misjudge sessions of path-routed orgs.
    let routed = x.config.org_by_host(x.facts.host).cloned();
    x.org = routed.clone();
    // A Bearer token needs an org to pick its keys: default_org will do.
    let bearer_org = routed
        .clone()
        .or_else(|| x.config.route(x.facts.host, "/").cloned());
    let found = match gate::bearer_identity(x, bearer_org.as_ref()).await {
        Some(result) => result.map(|id| (id, AuthMethod::Bearer)),
        None => gate::cookie_identity(x, routed.as_deref())
            .await
            .map(|id| (id, AuthMethod::Cookie)),
    };
    let Some((identity, method)) = found else {
        return Reply::json(
            401,
            &json!({"error": "unauthenticated", "request_id": x.request_id}),
        )
        .bearer_challenge(None);
    };
    if x.org.is_none() {
        x.org = x.config.org(&identity.org).cloned();
    }
    Reply::json(
        200,
        &json!({
            "org": identity.org,
            "principal": identity.principal,
            "claims": identity.claims,
            "method": method.label(),
            "expires_at": identity.expires_at,
        }),
    )
}
