//! `GET /_sso/whoami`: the identity the app would see, for scripts.

use serde_json::json;

use crate::auth::{self, Check};
use crate::ctx::Request;
use crate::decision::{Decision, Refusal, Verdict};
use crate::metrics::AuthMethod;
use crate::reply::Reply;

pub async fn whoami(req: &Request<'_>) -> Decision {
    let router = req.router();
    // Only a Host route binds /_sso/ endpoints to an org: a path route or
    // default_org would misjudge sessions of path-routed orgs.
    let routed = router.by_host(req.facts.host);
    // A Bearer token needs an org to pick its keys: default_org will do.
    let bearer_org = routed.or_else(|| router.for_endpoint(req.facts.host));
    let (check, method) = match auth::bearer(req, bearer_org).await {
        Check::Absent => {
            let cookie = auth::session_cookie(req, routed.map(|o| o.as_ref())).await;
            (cookie, AuthMethod::Cookie)
        }
        bearer => (bearer, AuthMethod::Bearer),
    };
    let auth = check.auth(method);
    if let Check::Limited(limited) = check {
        return Decision::refuse(routed.cloned(), Refusal::RateLimited(limited));
    }
    let Check::Valid(identity) = check else {
        let refusal = Refusal::Unauthenticated { login_url: None };
        return Decision::refuse(routed.cloned(), refusal)
            .with_credential(auth)
            .uncounted();
    };
    let org = routed.or_else(|| router.by_name(&identity.org)).cloned();
    let reply = Reply::json(
        200,
        &json!({
            "org": identity.org,
            "principal": identity.principal,
            "claims": identity.claims,
            "method": method.label(),
            "expires_at": identity.expires_at,
        }),
    );
    Decision::new(org, Verdict::Answer(reply))
        .with_credential(auth)
        .uncounted()
}
