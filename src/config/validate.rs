//! Raw YAML structs → the validated `Config`. Every refusal names the YAML
//! path of the field at fault.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;

use http::HeaderName;
use ipnet::IpNet;

use super::duration::ConfigDuration;
use super::keys::org_keys;
use super::model::*;
use super::raw::*;
use super::secret::{origin_field, Provenance, SecretSpec};
use super::FieldError;
use crate::keys::JwksStore;
use crate::metrics::OrgMetrics;
use crate::redirect;

const DEFAULT_TTL: u64 = 15 * 60;
const MIN_SESSION_SECRET: usize = 32;

pub fn validate(
    raw: RawConfig,
    file: &Path,
    text: &str,
    jwks: &Arc<JwksStore>,
) -> Result<Config, FieldError> {
    let base = file.parent().unwrap_or(Path::new("."));
    let mut provenance = Provenance::new(file, text);

    let listen = socket_addr("listen", raw.listen.as_deref().unwrap_or("0.0.0.0:8080"))?;
    let admin_listen = socket_addr(
        "admin_listen",
        raw.admin_listen.as_deref().unwrap_or("0.0.0.0:9090"),
    )?;
    if listen == admin_listen {
        return Err(FieldError::new(
            "admin_listen",
            "must differ from `listen`: the admin endpoints are never proxied",
        ));
    }
    let threads = match raw.threads.unwrap_or(0) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let upstream = upstream("upstream", &raw.upstream)?;
    let public_url = raw
        .public_url
        .as_deref()
        .map(|u| public_url("public_url", u))
        .transpose()?;
    let trusted_proxies = raw
        .trusted_proxies
        .iter()
        .enumerate()
        .map(|(i, p)| cidr(&format!("trusted_proxies[{i}]"), p))
        .collect::<Result<Vec<_>, _>>()?;
    let rate_limit = rate_limit(raw.rate_limit.as_ref())?;
    let reserved_prefix = reserved_prefix(raw.reserved_prefix.as_deref().unwrap_or("/_sso"))?;
    for (i, p) in raw.public_paths.iter().enumerate() {
        absolute_path(&format!("public_paths[{i}]"), p)?;
    }
    let session = session(&raw.session, base, &mut provenance)?;
    if session.secure && raw.public_url.is_none() && raw.trusted_proxies.is_empty() {
        provenance.warnings.push(
            "public_url: not set and no trusted_proxies: callback URLs are derived as http://<Host>; \
             behind a TLS-terminating ingress set public_url (or trust the ingress in trusted_proxies)"
                .into(),
        );
    }
    let replay_store = replay_store(raw.replay_store.as_deref().unwrap_or("memory"))?;
    let identity_headers = identity_headers(raw.identity_headers)?;
    let stripped_headers = identity_headers
        .iter()
        .map(|h| h.name.as_str().replace('_', "-"))
        .collect();
    let mut mapped_claims: Vec<String> = identity_headers
        .iter()
        .filter_map(|h| match &h.source {
            ClaimSource::Claim(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    mapped_claims.sort();
    mapped_claims.dedup();

    let mut orgs = Vec::new();
    let mut hosts = HashMap::new();
    let mut paths = Vec::new();
    let mut client_ids: HashMap<String, String> = HashMap::new();
    for (name, raw_org) in raw.organizations {
        let field = format!("organizations.{name}");
        let index = orgs.len();
        let org = org(
            &name,
            raw_org,
            &field,
            session.ttl,
            base,
            &mut provenance,
            jwks,
        )?;
        for (i, host) in org.hosts.iter().enumerate() {
            if let Some(prev) = hosts.insert(host.clone(), index) {
                let other: &Arc<Org> = &orgs[prev];
                return Err(FieldError::new(
                    format!("{field}.hosts[{i}]"),
                    format!(
                        "host `{host}` is already routed to organization `{}`",
                        other.name
                    ),
                ));
            }
        }
        for path in &org.paths {
            paths.push((path.clone(), index));
        }
        if let Some(code) = &org.code_flow {
            if let Some(other) = client_ids.insert(code.client_id.clone(), name.clone()) {
                return Err(FieldError::new(
                    format!("{field}.code_flow.client_id"),
                    format!("client_id is already used by organization `{other}`"),
                ));
            }
        }
        orgs.push(Arc::new(org));
    }
    paths.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
    let default_org = match raw.default_org {
        None => None,
        Some(name) => Some(orgs.iter().position(|o| o.name == name).ok_or_else(|| {
            FieldError::new("default_org", format!("no organization is named `{name}`"))
        })?),
    };

    Ok(Config {
        file: file.to_path_buf(),
        listen,
        admin_listen,
        threads,
        upstream,
        public_url,
        trusted_proxies,
        rate_limit,
        reserved_prefix,
        public_paths: raw.public_paths,
        session,
        replay_store,
        identity_headers,
        stripped_headers,
        mapped_claims,
        orgs,
        default_org,
        hosts,
        paths,
        fingerprint: provenance.fingerprint(),
        files: provenance.files,
        warnings: provenance.warnings,
    })
}

fn socket_addr(field: &str, text: &str) -> Result<SocketAddr, FieldError> {
    text.parse().map_err(|_| {
        FieldError::new(
            field,
            format!("`{text}` is not an address like 0.0.0.0:8080"),
        )
    })
}

fn upstream(field: &str, text: &str) -> Result<Upstream, FieldError> {
    let url = url::Url::parse(text)
        .map_err(|e| FieldError::new(field, format!("`{text}` is not a URL: {e}")))?;
    if url.scheme() != "http" {
        return Err(FieldError::new(
            field,
            "only http:// upstreams are supported (the app runs beside ssogate in the pod)",
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| FieldError::new(field, "the URL has no host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    // Resolved once here: pingora's peer would resolve (and panic) per request.
    let addr = (host.trim_matches(['[', ']']), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| FieldError::new(field, format!("cannot resolve `{host}`")))?;
    Ok(Upstream {
        addr,
        display: text.to_owned(),
    })
}

/// Absolute https URL; http only for the local machine, where no TLS is
/// needed for a developer's demo.
fn secure_url(field: &str, text: &str) -> Result<url::Url, FieldError> {
    let url = url::Url::parse(text)
        .map_err(|e| FieldError::new(field, format!("`{text}` is not an absolute URL: {e}")))?;
    let local = url.host_str().is_some_and(is_local_host);
    match url.scheme() {
        "https" => {}
        "http" if local => {}
        _ => {
            return Err(FieldError::new(
                field,
                format!("`{text}` must be an absolute https:// URL (http:// only for localhost)"),
            ))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(FieldError::new(field, format!("`{text}` has no host")));
    }
    Ok(url)
}

fn is_local_host(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host == "127.0.0.1"
        || host == "[::1]"
        || host == "::1"
}

fn public_url(field: &str, text: &str) -> Result<String, FieldError> {
    let url = url::Url::parse(text)
        .map_err(|e| FieldError::new(field, format!("`{text}` is not an absolute URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(FieldError::new(field, "must be an http(s) URL with a host"));
    }
    Ok(url.origin().ascii_serialization())
}

fn origin(field: &str, text: &str) -> Result<String, FieldError> {
    let url = secure_url(field, text)?;
    if url.path() != "/" || url.query().is_some() {
        return Err(FieldError::new(
            field,
            format!("`{text}` must be an origin (scheme://host[:port]) without a path"),
        ));
    }
    Ok(url.origin().ascii_serialization())
}

fn cidr(field: &str, text: &str) -> Result<IpNet, FieldError> {
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            FieldError::new(
                field,
                format!("`{text}` is not an address or CIDR like 10.0.0.0/8"),
            )
        })
}

/// The limits of SPEC 11, each at least 1 (a limit of 0 would lock every
/// client out).
fn rate_limit(raw: Option<&RawRateLimit>) -> Result<RateLimits, FieldError> {
    let defaults = RateLimits::default();
    let Some(raw) = raw else {
        return Ok(defaults);
    };
    let field = |name: &str, value: Option<u32>, default: u32| match value {
        Some(0) => Err(FieldError::new(
            format!("rate_limit.{name}"),
            "must be at least 1",
        )),
        Some(n) => Ok(n),
        None => Ok(default),
    };
    Ok(RateLimits {
        logins_per_second: field(
            "logins_per_second",
            raw.logins_per_second,
            defaults.logins_per_second,
        )?,
        logins_burst: field("logins_burst", raw.logins_burst, defaults.logins_burst)?,
        failures_per_minute: field(
            "failures_per_minute",
            raw.failures_per_minute,
            defaults.failures_per_minute,
        )?,
    })
}

fn reserved_prefix(text: &str) -> Result<String, FieldError> {
    let ok = text.len() > 1
        && text.starts_with('/')
        && !text.ends_with('/')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b));
    if !ok {
        return Err(FieldError::new(
            "reserved_prefix",
            format!("`{text}` must be a path like /_sso, without a trailing slash"),
        ));
    }
    Ok(text.to_owned())
}

fn absolute_path(field: &str, text: &str) -> Result<(), FieldError> {
    if !text.starts_with('/') || text.bytes().any(|b| b.is_ascii_control()) {
        return Err(FieldError::new(
            field,
            format!("`{text}` must be a path starting with /"),
        ));
    }
    Ok(())
}

fn session(
    raw: &RawSession,
    base: &Path,
    provenance: &mut Provenance,
) -> Result<SessionSettings, FieldError> {
    let spec = SecretSpec {
        field: "session.secret".into(),
        inline: raw.secret.as_deref(),
        file: raw.secret_file.as_deref(),
        env: raw.secret_env.as_deref(),
    };
    let (secret, origin) = spec.require(base, provenance)?;
    if secret.len() < MIN_SESSION_SECRET {
        return Err(FieldError::new(
            origin_field(&spec.field, &origin),
            format!(
                "the session secret needs at least {MIN_SESSION_SECRET} bytes, this one has {}",
                secret.len()
            ),
        ));
    }
    let secure = raw.secure.unwrap_or(true);
    let cookie_name = match &raw.cookie_name {
        Some(name) => {
            if !is_cookie_name(name) {
                return Err(FieldError::new(
                    "session.cookie_name",
                    format!("`{name}` is not a valid cookie name"),
                ));
            }
            if !secure && (name.starts_with("__Host-") || name.starts_with("__Secure-")) {
                return Err(FieldError::new(
                    "session.cookie_name",
                    "browsers refuse __Host- and __Secure- cookies without `secure: true`",
                ));
            }
            name.clone()
        }
        None if secure => "__Host-ssogate".into(),
        None => "ssogate_session".into(),
    };
    Ok(SessionSettings {
        key: cookie::Key::derive_from(secret.expose()),
        state_cookie_name: format!("{cookie_name}_state"),
        cookie_name,
        ttl: raw.ttl.map_or(DEFAULT_TTL, ConfigDuration::secs),
        secure,
        cache_max_entries: raw.cache_max_entries.unwrap_or(100_000),
        fingerprint: secret_fingerprint(secret.expose()),
    })
}

fn secret_fingerprint(secret: &[u8]) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest([b"ssogate-session-fingerprint".as_slice(), secret].concat());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn replay_store(text: &str) -> Result<ReplayStoreSpec, FieldError> {
    if text == "memory" {
        return Ok(ReplayStoreSpec::Memory);
    }
    if text.starts_with("redis://") || text.starts_with("redis+unix://") {
        redis::Client::open(text)
            .map_err(|e| FieldError::new("replay_store", format!("not a usable redis URL: {e}")))?;
        return Ok(ReplayStoreSpec::Redis(text.to_owned()));
    }
    Err(FieldError::new(
        "replay_store",
        format!("`{text}` is neither `memory` nor a redis:// URL"),
    ))
}

fn identity_headers(
    raw: Option<std::collections::BTreeMap<String, String>>,
) -> Result<Vec<IdentityHeader>, FieldError> {
    let Some(raw) = raw else {
        return Ok(default_identity_headers());
    };
    let mut out = Vec::with_capacity(raw.len());
    for (name, claim) in raw {
        let field = format!("identity_headers.{name}");
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| FieldError::new(&field, format!("`{name}` is not a header name")))?;
        let protected = [
            "host",
            "cookie",
            "authorization",
            "content-length",
            "transfer-encoding",
            "connection",
        ];
        if protected.contains(&header.as_str()) {
            return Err(FieldError::new(
                &field,
                format!("`{name}` cannot carry identity"),
            ));
        }
        out.push(IdentityHeader {
            name: header,
            source: claim_source(&field, &claim)?,
        });
    }
    Ok(out)
}

fn claim_source(field: &str, claim: &str) -> Result<ClaimSource, FieldError> {
    Ok(match claim {
        "$principal" => ClaimSource::Principal,
        "$org" => ClaimSource::Org,
        c if c.starts_with('$') => {
            return Err(FieldError::new(
                field,
                format!("`{c}`: the special values are $principal and $org"),
            ))
        }
        "" => return Err(FieldError::new(field, "the claim name is empty")),
        c => ClaimSource::Claim(c.to_owned()),
    })
}

pub fn default_identity_headers() -> Vec<IdentityHeader> {
    [
        ("x-auth-request-user", ClaimSource::Principal),
        ("x-auth-request-email", ClaimSource::Claim("email".into())),
        ("x-auth-request-groups", ClaimSource::Claim("groups".into())),
        ("x-auth-request-org", ClaimSource::Org),
    ]
    .into_iter()
    .map(|(name, source)| IdentityHeader {
        name: HeaderName::from_static(name),
        source,
    })
    .collect()
}

fn is_org_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name != "_none"
}

fn org(
    name: &str,
    raw: RawOrg,
    field: &str,
    default_ttl: u64,
    base: &Path,
    provenance: &mut Provenance,
    jwks: &Arc<JwksStore>,
) -> Result<Org, FieldError> {
    if !is_org_name(name) {
        return Err(FieldError::new(
            field,
            "an organization name uses letters, digits, `-`, `_`, `.` (at most 64)",
        ));
    }
    let hosts = raw
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            normalize_host(h)
                .filter(|h| !h.contains(['/', ' ', '?', '#']))
                .map(str::to_ascii_lowercase)
                .ok_or_else(|| {
                    FieldError::new(
                        format!("{field}.hosts[{i}]"),
                        format!("`{h}` is not a host name"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (i, p) in raw.paths.iter().enumerate() {
        absolute_path(&format!("{field}.paths[{i}]"), p)?;
    }
    let login_url = raw
        .login_url
        .as_deref()
        .map(|u| secure_url(&format!("{field}.login_url"), u))
        .transpose()?;
    let logout_url = raw
        .logout_url
        .as_deref()
        .map(|u| secure_url(&format!("{field}.logout_url"), u).map(|u| u.to_string()))
        .transpose()?;
    let home_path = raw.home_path.unwrap_or_else(|| "/".into());
    if !redirect::is_safe_return_path(&home_path) {
        return Err(FieldError::new(
            format!("{field}.home_path"),
            format!("`{home_path}` must be a path on this host, like /"),
        ));
    }
    let allowed_origins = raw
        .allowed_origins
        .iter()
        .enumerate()
        .map(|(i, o)| origin(&format!("{field}.allowed_origins[{i}]"), o))
        .collect::<Result<Vec<_>, _>>()?;
    let frame_ancestors = std::iter::once("frame-ancestors 'self'".to_owned())
        .chain(allowed_origins.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");

    let keys = org_keys(&raw.keys, field, base, provenance, jwks)?;

    let principal_claim = raw.principal_claim.unwrap_or_else(|| "sub".into());
    if principal_claim.is_empty() {
        return Err(FieldError::new(
            format!("{field}.principal_claim"),
            "must not be empty",
        ));
    }
    let accept_query_token = match raw.accept_query_token {
        Some(p)
            if p.is_empty()
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            return Err(FieldError::new(
                format!("{field}.accept_query_token"),
                format!("`{p}` is not a query parameter name"),
            ))
        }
        other => other,
    };
    let accept_bearer = raw.accept_bearer.unwrap_or(false);
    let forward_bearer = raw.forward_bearer.unwrap_or(false);
    if forward_bearer && !accept_bearer {
        provenance.warnings.push(format!(
            "{field}.forward_bearer: has no effect without accept_bearer (an Authorization \
             header then reaches the app unchanged anyway)"
        ));
    }
    let code_flow = raw
        .code_flow
        .map(|c| code_flow(c, &format!("{field}.code_flow"), base, provenance))
        .transpose()?;
    let upstream = raw
        .upstream
        .as_deref()
        .map(|u| upstream(&format!("{field}.upstream"), u))
        .transpose()?;

    Ok(Org {
        name: name.to_owned(),
        enabled: raw.enabled.unwrap_or(true),
        hosts,
        paths: raw.paths,
        login_url,
        home_path,
        logout_url,
        allowed_origins,
        frame_ancestors,
        keys,
        issuer: raw.issuer,
        audience: raw.audience.map(OneOrMany::into_vec).unwrap_or_default(),
        leeway: raw.leeway.map_or(30, ConfigDuration::secs),
        max_token_age: raw.max_token_age.map_or(300, ConfigDuration::secs),
        principal_claim,
        org_claim: raw.org_claim,
        accept_bearer,
        forward_bearer,
        accept_query_token,
        session_ttl: raw.session_ttl.map_or(default_ttl, ConfigDuration::secs),
        code_flow,
        upstream,
        metrics: OrgMetrics::new(name),
    })
}

fn code_flow(
    raw: RawCodeFlow,
    field: &str,
    base: &Path,
    provenance: &mut Provenance,
) -> Result<CodeFlow, FieldError> {
    if raw.client_id.is_empty() || raw.client_id.contains(':') {
        return Err(FieldError::new(
            format!("{field}.client_id"),
            "must be non-empty and without `:`",
        ));
    }
    let spec = SecretSpec {
        field: format!("{field}.client_secret"),
        inline: raw.client_secret.as_deref(),
        file: raw.client_secret_file.as_deref(),
        env: raw.client_secret_env.as_deref(),
    };
    let (client_secret, origin) = spec.require(base, provenance)?;
    if client_secret.is_empty() {
        return Err(FieldError::new(
            origin_field(&spec.field, &origin),
            "is empty",
        ));
    }
    Ok(CodeFlow {
        client_id: raw.client_id,
        client_secret,
        code_ttl: raw.code_ttl.map_or(60, ConfigDuration::secs),
    })
}
