//! `GET|POST /_sso/logout`: forget the session here and in every replica.

use crate::ctx::Request;
use crate::decision::{Decision, Verdict};
use crate::replay;
use crate::reply::{escape, page, Reply};
use crate::session::{clear_cookie, read_session};

pub async fn logout(req: &Request<'_>) -> Decision {
    let settings = &req.config.session;
    // Any org's session, revoked or not: ending it again does no harm.
    let session = read_session(settings, &req.head.headers, req.now);
    if let Some(id) = &session {
        // Revoked until it would have expired anyway: a copied cookie is
        // worthless from now on, whichever replica it is shown to.
        let key = replay::revoked_key(&id.session_id);
        if let Err(e) = req.shared.replay.spend(&key, id.expires_at).await {
            tracing::error!(request_id = req.request_id, error = %e, "could not revoke session");
        }
    }
    let router = req.router();
    let org = session
        .as_ref()
        .and_then(|id| router.by_name(&id.org))
        .or_else(|| router.for_endpoint(req.facts.host))
        .cloned();
    let clear = clear_cookie(settings, &settings.cookie_name);
    let reply = match org.as_ref().and_then(|o| o.logout_url.as_deref()) {
        Some(url) => Reply::redirect(url).cookie(clear),
        None => {
            let home = org.as_ref().map_or("/", |o| o.home_path.as_str());
            Reply::html(
                200,
                page(
                    "Signed out",
                    &format!(
                        "<p>You are signed out.</p><p><a href=\"{}\">Sign in again</a></p>",
                        escape(home)
                    ),
                ),
            )
            .cookie(clear)
        }
    };
    Decision::new(org, Verdict::Answer(reply))
}
