//! `GET|POST /_sso/logout`: forget the session here and in every replica.

use crate::ctx::Request;
use crate::decision::{Decision, Verdict};
use crate::reply::{escape, page, Reply};
use crate::session::{clear_cookie, read_session};

pub async fn logout(req: &Request<'_>) -> Decision {
    let settings = &req.config.session;
    // Any org's session, revoked or not: ending it again does no harm.
    let session = read_session(settings, &req.head.headers, req.now);
    if let Some(id) = &session {
        // Revoked until it would have expired anyway: a copied cookie is
        // worthless from now on on this replica, and on the others as soon
        // as the replay store has it (queued while the store is down; the
        // answer never waits for it, SPEC 11).
        req.shared.replay.revoke(&id.session_id, id.expires_at);
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
