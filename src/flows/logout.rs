//! `GET|POST /_sso/logout`: forget the session here and in every replica.

use super::Exchange;
use crate::replay;
use crate::reply::{escape, page, Reply};
use crate::session::{clear_cookie, read_session};

pub async fn logout(x: &mut Exchange<'_>) -> Reply {
    let settings = &x.config.session;
    let session = read_session(settings, &x.req.headers, x.now);
    if let Some(id) = &session {
        // Revoked until it would have expired anyway: a copied cookie is
        // worthless from now on, whichever replica it is shown to.
        let key = replay::revoked_key(&id.session_id);
        if let Err(e) = x.shared.replay.spend(&key, id.expires_at).await {
            tracing::error!(request_id = x.request_id, error = %e, "could not revoke session");
        }
    }
    let org = session
        .as_ref()
        .and_then(|id| x.config.org(&id.org))
        .or_else(|| x.config.route(x.facts.host, "/"))
        .cloned();
    let clear = clear_cookie(settings, &settings.cookie_name);
    x.org = org.clone();
    match org.as_ref().and_then(|o| o.logout_url.as_deref()) {
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
    }
}
