//! Every metric of ssogate, in the prometheus default registry. Per-org
//! series are resolved once, at config load, so counting on the request path
//! is one atomic add with no label lookup and no lock.

use std::sync::LazyLock;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};

/// What became of a request (`ssogate_requests_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Proxied,
    Public,
    LoginRedirect,
    Unauthorized,
    Forbidden,
    Unrouted,
    Internal,
    Error,
}

impl Outcome {
    const ALL: [Outcome; 8] = [
        Outcome::Proxied,
        Outcome::Public,
        Outcome::LoginRedirect,
        Outcome::Unauthorized,
        Outcome::Forbidden,
        Outcome::Unrouted,
        Outcome::Internal,
        Outcome::Error,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Proxied => "proxied",
            Outcome::Public => "public",
            Outcome::LoginRedirect => "login_redirect",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Forbidden => "forbidden",
            Outcome::Unrouted => "unrouted",
            Outcome::Internal => "internal",
            Outcome::Error => "error",
        }
    }
}

/// How a request tried to authenticate (`ssogate_auth_total{method}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Cookie,
    Bearer,
    Callback,
    Jwt,
    Query,
    Code,
    Authorize,
}

impl AuthMethod {
    const ALL: [AuthMethod; 7] = [
        AuthMethod::Cookie,
        AuthMethod::Bearer,
        AuthMethod::Callback,
        AuthMethod::Jwt,
        AuthMethod::Query,
        AuthMethod::Code,
        AuthMethod::Authorize,
    ];

    pub fn label(self) -> &'static str {
        match self {
            AuthMethod::Cookie => "cookie",
            AuthMethod::Bearer => "bearer",
            AuthMethod::Callback => "callback",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Query => "query",
            AuthMethod::Code => "code",
            AuthMethod::Authorize => "authorize",
        }
    }
}

/// The verdict on a credential (`ssogate_auth_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthResult {
    Ok,
    Expired,
    BadSignature,
    BadClaims,
    Replay,
    Malformed,
    UnknownOrg,
    Disabled,
}

impl AuthResult {
    const ALL: [AuthResult; 8] = [
        AuthResult::Ok,
        AuthResult::Expired,
        AuthResult::BadSignature,
        AuthResult::BadClaims,
        AuthResult::Replay,
        AuthResult::Malformed,
        AuthResult::UnknownOrg,
        AuthResult::Disabled,
    ];

    pub fn label(self) -> &'static str {
        match self {
            AuthResult::Ok => "ok",
            AuthResult::Expired => "expired",
            AuthResult::BadSignature => "bad_signature",
            AuthResult::BadClaims => "bad_claims",
            AuthResult::Replay => "replay",
            AuthResult::Malformed => "malformed",
            AuthResult::UnknownOrg => "unknown_org",
            AuthResult::Disabled => "disabled",
        }
    }
}

/// Which per-address bucket refused a request
/// (`ssogate_rate_limited_total{kind}`, SPEC 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// The login endpoints' bucket.
    Login,
    /// The refused credentials' bucket.
    Failures,
}

impl LimitKind {
    const ALL: [LimitKind; 2] = [LimitKind::Login, LimitKind::Failures];

    pub fn label(self) -> &'static str {
        match self {
            LimitKind::Login => "login",
            LimitKind::Failures => "failures",
        }
    }
}

struct Families {
    requests: IntCounterVec,
    auth: IntCounterVec,
    rate_limited: IntCounterVec,
    duration: HistogramVec,
    upstream_errors: IntCounterVec,
    cache_hits: IntCounter,
    cache_misses: IntCounter,
    cache_entries: IntGauge,
    rate_limit_addresses: IntGauge,
    reloads: IntCounterVec,
    generation: IntGauge,
    build_info: IntGaugeVec,
}

/// Metric definitions are constants; a failure here is a programming error
/// caught by the unit test below, never by a user.
fn defined<T>(result: prometheus::Result<T>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => unreachable!("invalid metric definition: {e}"),
    }
}

fn registered<T: prometheus::core::Collector + Clone + 'static>(metric: T) -> T {
    // A second registration can only happen if two registries are merged;
    // the metric still counts, it is just not exported twice.
    let _ = prometheus::default_registry().register(Box::new(metric.clone()));
    metric
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    let counter_vec = |name: &str, help: &str, labels: &[&str]| {
        registered(defined(IntCounterVec::new(Opts::new(name, help), labels)))
    };
    let families = Families {
        requests: counter_vec(
            "ssogate_requests_total",
            "Requests by organization and outcome.",
            &["org", "outcome"],
        ),
        auth: counter_vec(
            "ssogate_auth_total",
            "Credential checks by organization, method and result.",
            &["org", "method", "result"],
        ),
        rate_limited: counter_vec(
            "ssogate_rate_limited_total",
            "Requests answered 429 by the per-address rate limits, by bucket.",
            &["org", "kind"],
        ),
        duration: registered(defined(HistogramVec::new(
            HistogramOpts::new(
                "ssogate_request_duration_seconds",
                "Time from the request head to the end of the response.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["org"],
        ))),
        upstream_errors: counter_vec(
            "ssogate_upstream_errors_total",
            "Failures talking to the app, by kind.",
            &["org", "kind"],
        ),
        cache_hits: registered(defined(IntCounter::new(
            "ssogate_session_cache_hits_total",
            "Validated-session cache hits.",
        ))),
        cache_misses: registered(defined(IntCounter::new(
            "ssogate_session_cache_misses_total",
            "Validated-session cache misses.",
        ))),
        cache_entries: registered(defined(IntGauge::new(
            "ssogate_session_cache_entries",
            "Entries in the validated-session cache.",
        ))),
        rate_limit_addresses: registered(defined(IntGauge::new(
            "ssogate_rate_limit_addresses",
            "Client addresses the rate limiter remembers.",
        ))),
        reloads: counter_vec(
            "ssogate_config_reloads_total",
            "Config loads after the first, by result.",
            &["result"],
        ),
        generation: registered(defined(IntGauge::new(
            "ssogate_config_generation",
            "Successful config loads since start.",
        ))),
        build_info: registered(defined(IntGaugeVec::new(
            Opts::new("ssogate_build_info", "Build information."),
            &["version"],
        ))),
    };
    families
        .build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    for result in ["ok", "error"] {
        families.reloads.with_label_values(&[result]);
    }
    families
});

/// Counters of one organization (or of `_none`, the unrouted requests).
#[derive(Debug, Clone)]
pub struct OrgMetrics {
    name: String,
    requests: Vec<IntCounter>,
    auth: Vec<IntCounter>,
    rate_limited: Vec<IntCounter>,
    duration: Histogram,
}

impl OrgMetrics {
    pub fn new(org: &str) -> Self {
        let f = &*FAMILIES;
        let requests = Outcome::ALL
            .iter()
            .map(|o| f.requests.with_label_values(&[org, o.label()]))
            .collect();
        let auth = AuthMethod::ALL
            .iter()
            .flat_map(|m| {
                AuthResult::ALL
                    .iter()
                    .map(move |r| f.auth.with_label_values(&[org, m.label(), r.label()]))
            })
            .collect();
        let rate_limited = LimitKind::ALL
            .iter()
            .map(|k| f.rate_limited.with_label_values(&[org, k.label()]))
            .collect();
        OrgMetrics {
            name: org.to_owned(),
            requests,
            auth,
            rate_limited,
            duration: f.duration.with_label_values(&[org]),
        }
    }

    pub fn request(&self, outcome: Outcome, seconds: f64) {
        if let Some(c) = self.requests.get(outcome as usize) {
            c.inc();
        }
        self.duration.observe(seconds);
    }

    pub fn auth(&self, method: AuthMethod, result: AuthResult) {
        let index = method as usize * AuthResult::ALL.len() + result as usize;
        if let Some(c) = self.auth.get(index) {
            c.inc();
        }
    }

    pub fn rate_limited(&self, kind: LimitKind) {
        if let Some(c) = self.rate_limited.get(kind as usize) {
            c.inc();
        }
    }

    /// Upstream failures are rare, so their open-ended `kind` label is
    /// resolved when one happens.
    pub fn upstream_error(&self, kind: &str) {
        FAMILIES
            .upstream_errors
            .with_label_values(&[&self.name, kind])
            .inc();
    }
}

/// The series of requests that route to no organization.
pub fn unrouted() -> &'static OrgMetrics {
    static NONE: LazyLock<OrgMetrics> = LazyLock::new(|| OrgMetrics::new("_none"));
    &NONE
}

pub fn config_reloaded(ok: bool) {
    FAMILIES
        .reloads
        .with_label_values(&[if ok { "ok" } else { "error" }])
        .inc();
}

pub fn set_generation(generation: u64) {
    FAMILIES.generation.set(generation as i64);
}

pub fn session_cache(hit: bool) {
    if hit {
        FAMILIES.cache_hits.inc();
    } else {
        FAMILIES.cache_misses.inc();
    }
}

pub fn set_session_cache_entries(entries: u64) {
    FAMILIES.cache_entries.set(entries as i64);
}

pub fn set_rate_limit_addresses(addresses: u64) {
    FAMILIES.rate_limit_addresses.set(addresses as i64);
}

/// The Prometheus text exposition of every registered metric.
pub fn render() -> String {
    use prometheus::Encoder;
    LazyLock::force(&FAMILIES);
    let mut out = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    if encoder.encode(&prometheus::gather(), &mut out).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

// ---- The replay store (SPEC 11) -----------------------------------------------------------

/// A replay-store operation (`ssogate_replay_store_errors_total{op}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOp {
    /// Spending a token's `jti` or a one-time code.
    Spend,
    /// Writing a logout's revocation for the other replicas.
    Revoke,
    /// Reading the other replicas' revocations.
    Check,
}

impl StoreOp {
    const ALL: [StoreOp; 3] = [StoreOp::Spend, StoreOp::Revoke, StoreOp::Check];

    pub fn label(self) -> &'static str {
        match self {
            StoreOp::Spend => "spend",
            StoreOp::Revoke => "revoke",
            StoreOp::Check => "check",
        }
    }
}

static STORE_ERRORS: LazyLock<[IntCounter; 3]> = LazyLock::new(|| {
    let family = registered(defined(IntCounterVec::new(
        Opts::new(
            "ssogate_replay_store_errors_total",
            "Failed replay-store operations, by operation.",
        ),
        &["op"],
    )));
    StoreOp::ALL.map(|op| family.with_label_values(&[op.label()]))
});

/// Counts one failed replay-store operation.
pub fn replay_store_error(op: StoreOp) {
    STORE_ERRORS[op as usize].inc();
}

/// Exports every `op` series, at zero until something fails.
pub fn export_replay_store_errors() {
    LazyLock::force(&STORE_ERRORS);
}

#[cfg(test)]
mod replay_store_tests {
    use super::*;

    #[test]
    fn every_op_is_exported_and_counted_apart() {
        export_replay_store_errors();
        let series = |op: &str| format!("ssogate_replay_store_errors_total{{op=\"{op}\"}}");
        let text = render();
        for op in ["spend", "revoke", "check"] {
            assert!(text.contains(&series(op)), "{op} missing:\n{text}");
        }
        let count = |text: &str, op: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{} ", series(op))))
                .and_then(|v| v.parse::<u64>().ok())
        };
        let before = count(&text, "revoke");
        replay_store_error(StoreOp::Revoke);
        let after = count(&render(), "revoke");
        assert_eq!(after, before.map(|n| n + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_of_the_contract_is_exported() {
        let org = OrgMetrics::new("unit");
        org.request(Outcome::Proxied, 0.01);
        org.auth(AuthMethod::Callback, AuthResult::Replay);
        org.rate_limited(LimitKind::Failures);
        let text = render();
        for name in [
            "ssogate_requests_total",
            "ssogate_auth_total",
            "ssogate_rate_limited_total",
            "ssogate_rate_limit_addresses",
            "ssogate_request_duration_seconds",
            "ssogate_session_cache_hits_total",
            "ssogate_session_cache_misses_total",
            "ssogate_session_cache_entries",
            "ssogate_config_reloads_total",
            "ssogate_config_generation",
            "ssogate_build_info",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
        assert!(
            text.contains(r#"ssogate_auth_total{method="callback",org="unit",result="replay"} 1"#)
        );
        assert!(text.contains(r#"ssogate_requests_total{org="unit",outcome="proxied"} 1"#));
        assert!(text.contains(r#"ssogate_rate_limited_total{kind="failures",org="unit"} 1"#));
        assert!(text.contains(r#"ssogate_rate_limited_total{kind="login",org="unit"} 0"#));
    }
}
