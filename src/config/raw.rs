//! Serde structs that mirror config.yaml field for field. Nothing here is
//! trusted or interpreted: `validate` turns it into the model the proxy uses.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::duration::ConfigDuration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Option<String>,
    pub admin_listen: Option<String>,
    pub threads: Option<usize>,
    pub upstream: String,
    pub public_url: Option<String>,
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    pub rate_limit: Option<RawRateLimit>,
    pub reserved_prefix: Option<String>,
    #[serde(default)]
    pub public_paths: Vec<String>,
    pub session: RawSession,
    pub replay_store: Option<String>,
    pub identity_headers: Option<BTreeMap<String, String>>,
    pub default_org: Option<String>,
    pub organizations: BTreeMap<String, RawOrg>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSession {
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub secret_env: Option<String>,
    pub cookie_name: Option<String>,
    pub ttl: Option<ConfigDuration>,
    pub secure: Option<bool>,
    pub cache_max_entries: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    pub logins_per_second: Option<u32>,
    pub logins_burst: Option<u32>,
    pub failures_per_minute: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOrg {
    pub enabled: Option<bool>,
    #[serde(default)]
    pub hosts: Vec<String>,
    #[serde(default)]
    pub paths: Vec<String>,
    pub login_url: Option<String>,
    pub home_path: Option<String>,
    pub logout_url: Option<String>,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub keys: Vec<RawKey>,
    pub issuer: Option<String>,
    pub audience: Option<OneOrMany>,
    pub leeway: Option<ConfigDuration>,
    pub max_token_age: Option<ConfigDuration>,
    pub principal_claim: Option<String>,
    pub org_claim: Option<String>,
    pub accept_bearer: Option<bool>,
    pub forward_bearer: Option<bool>,
    pub accept_query_token: Option<String>,
    pub session_ttl: Option<ConfigDuration>,
    pub code_flow: Option<RawCodeFlow>,
    pub upstream: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    pub alg: Option<String>,
    pub kid: Option<String>,
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub secret_env: Option<String>,
    pub public_key_file: Option<PathBuf>,
    pub pkcs12_file: Option<PathBuf>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_env: Option<String>,
    pub alias: Option<String>,
    pub jwks_file: Option<PathBuf>,
    pub jwks_url: Option<String>,
    pub refresh: Option<ConfigDuration>,
    pub allow_expired_certificate: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCodeFlow {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub client_secret_env: Option<String>,
    pub code_ttl: Option<ConfigDuration>,
}
