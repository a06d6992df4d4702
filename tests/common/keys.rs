//! Key fixtures and helpers for the key / Bearer / JWKS tests (`tests/keys.rs`,
//! `tests/bearer.rs`, `tests/jwks_url.rs`).
//!
//! # Fixtures
//!
//! Nothing binary is committed: [`fixtures`] generates every key, certificate and keystore
//! once per test binary, in a temporary directory, with the `openssl` command line (1.1.1 or
//! 3.x) and Java's `keytool`, reads them into memory and deletes the directory. To regenerate
//! them, just run the tests; to look at them, set `SSOGATE_FIXTURES_OUT=/some/dir` and the
//! generated files are also copied there. What is generated (file name → content):
//!
//! * `rsa`, `rsa2`, `evil-rsa` (2048 bits), `rsa1024`, `ec256`, `evil-ec256` (P-256), `ec384`,
//!   `evil-ec384` (P-384), `ed25519`, `evil-ed25519`: `<k>.key.pem` (PKCS#8 private key, `openssl genpkey`)
//!   and `<k>.pub.pem` (SubjectPublicKeyInfo); for `rsa`, `rsa2`, `evil-rsa`, `rsa1024`,
//!   `ec256`, `ec384`, `ed25519` also `<k>.cert.pem`, a self-signed certificate valid for a year
//!   (`openssl req -x509`); `rsa.pkcs1.pub.pem` and `rsa1024.pkcs1.pub.pem` (`RSA PUBLIC KEY`).
//! * `rsa.expired.cert.pem` (valid 2020-2021) and `rsa.future.cert.pem` (valid in 2099), for
//!   the `rsa` key, made with `openssl ca -selfsign -startdate/-enddate` (works on every
//!   openssl; `req -not_before/-not_after` needs 3.4+).
//! * `rsa.p12`: keystore (key + certificate, alias `idp`), modern encryption
//!   (PBES2/AES-256-CBC, HMAC-SHA256 MAC); `rsa.legacy.p12`: the same with
//!   `openssl pkcs12 -export -legacy` (RC2-40 certificates, 3DES key, SHA-1 MAC);
//!   `rsa.expired.p12` (the expired certificate), `rsa1024.p12`; each one's encryption is
//!   checked with `openssl pkcs12 -info` right after it is written.
//! * `rsa.trust.p12`: a Java truststore written by `keytool -importcert -storetype PKCS12`
//!   holding two trusted certificates, `idp` (rsa) and `other` (rsa2); only when `keytool` is
//!   on PATH (Debian: `default-jre-headless`), see [`Fixtures::require_keytool`].
//! * `p12.pass`: [`P12_PASSWORD`] plus a trailing newline; `garbage.p12`: not a keystore.
//!
//! Public JWKs of every key come from [`Fixtures::jwk`] (RSA `n` from `openssl rsa -modulus`,
//! EC/Ed25519 points from the tail of the DER public key).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, AlgorithmFamily, EncodingKey, Header};
use serde_json::{json, Value};

use super::{b64url, fill, free_port, write_default_files, Gate, GateBuilder, Resp};

/// The password of every generated `.p12` (never expected in any output).
pub const P12_PASSWORD: &str = "Kp12-Sekrit-pass-4711";

/// RSA keys (2048 bits unless named otherwise), EC and Ed25519 keys that get generated.
const RSA_KEYS: &[(&str, u32)] = &[
    ("rsa", 2048),
    ("rsa2", 2048),
    ("evil-rsa", 2048),
    ("rsa1024", 1024),
];
const EC_KEYS: &[(&str, &str)] = &[
    ("ec256", "P-256"),
    ("evil-ec256", "P-256"),
    ("ec384", "P-384"),
    ("evil-ec384", "P-384"),
];
const ED_KEYS: &[&str] = &["ed25519", "evil-ed25519"];
const CERTS: &[&str] = &[
    "rsa", "rsa2", "evil-rsa", "rsa1024", "ec256", "ec384", "ed25519",
];

pub struct Fixtures {
    files: BTreeMap<String, Vec<u8>>,
    /// key name → public JWK without kid / alg / use
    jwks: BTreeMap<String, Value>,
    /// Why there is no keytool truststore, if there is none.
    keytool_missing: Option<String>,
}

/// The fixtures of this test binary, generated on first use.
pub fn fixtures() -> &'static Fixtures {
    static FX: OnceLock<Fixtures> = OnceLock::new();
    FX.get_or_init(generate)
}

impl Fixtures {
    /// The bytes of a generated file (see the module doc for names).
    pub fn get(&self, name: &str) -> &[u8] {
        self.files
            .get(name)
            .unwrap_or_else(|| panic!("no fixture {name:?} (have {:?})", self.names()))
    }

    pub fn has(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.files.keys().map(|s| s.as_str()).collect()
    }

    /// Every generated file, for [`super::check`]'s `extra`.
    pub fn all(&self) -> Vec<(&str, &[u8])> {
        self.files
            .iter()
            .map(|(n, c)| (n.as_str(), c.as_slice()))
            .collect()
    }

    /// The public JWK of key `key` (`rsa`, `ec256`, `ed25519`, ...) with `kid`, `use: sig`
    /// and, when given, `alg`.
    pub fn jwk(&self, key: &str, kid: &str, alg: Option<&str>) -> Value {
        let mut v = self
            .jwks
            .get(key)
            .unwrap_or_else(|| panic!("no JWK for key {key:?}"))
            .clone();
        let m = v.as_object_mut().unwrap();
        m.insert("kid".into(), json!(kid));
        m.insert("use".into(), json!("sig"));
        if let Some(a) = alg {
            m.insert("alg".into(), json!(a));
        }
        v
    }

    /// Panics with a clear message when keytool was not available to build `rsa.trust.p12`.
    pub fn require_keytool(&self) {
        if let Some(why) = &self.keytool_missing {
            panic!(
                "keytool is needed for the Java truststore fixture but {why}. Install a JRE \
                 (Debian/Ubuntu: apt-get install default-jre-headless) and run again."
            );
        }
    }
}

/// The base64 (standard) DER of the first PEM block of a fixture, as in an `x5c` header.
pub fn pem_body(pem: &[u8]) -> String {
    String::from_utf8_lossy(pem)
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect()
}

/// A JWKS document from JWKs.
pub fn jwks_doc(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

fn run(dir: &Path, program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (needed for key fixtures): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "fixture command failed: {program} {}\n{text}",
        args.join(" ")
    );
    text
}

fn openssl(dir: &Path, args: &[&str]) -> String {
    run(dir, "openssl", args)
}

fn generate() -> Fixtures {
    let tmp = tempfile::tempdir().expect("fixture tempdir");
    let d = tmp.path();
    let pass = format!("pass:{P12_PASSWORD}");
    let mut jwks = BTreeMap::new();

    for (name, bits) in RSA_KEYS {
        let key = format!("{name}.key.pem");
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                &format!("rsa_keygen_bits:{bits}"),
                "-out",
                &key,
            ],
        );
        let public = format!("{name}.pub.pem");
        openssl(d, &["pkey", "-in", &key, "-pubout", "-out", &public]);
        let modulus = openssl(d, &["rsa", "-pubin", "-in", &public, "-noout", "-modulus"]);
        let hex = modulus
            .lines()
            .find_map(|l| l.trim().strip_prefix("Modulus="))
            .unwrap_or_else(|| panic!("no modulus in {modulus:?}"));
        let text = openssl(d, &["rsa", "-pubin", "-in", &public, "-noout", "-text"]);
        assert!(text.contains("Exponent: 65537"), "{text}");
        let n = from_hex(hex);
        assert_eq!(n.len() * 8, *bits as usize, "modulus of {name}");
        jwks.insert(
            name.to_string(),
            json!({"kty": "RSA", "n": b64url(&n), "e": "AQAB"}),
        );
    }
    for name in ["rsa", "rsa1024"] {
        openssl(
            d,
            &[
                "rsa",
                "-in",
                &format!("{name}.key.pem"),
                "-RSAPublicKey_out",
                "-out",
                &format!("{name}.pkcs1.pub.pem"),
            ],
        );
    }
    for (name, curve) in EC_KEYS {
        let key = format!("{name}.key.pem");
        openssl(
            d,
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                &format!("ec_paramgen_curve:{curve}"),
                "-out",
                &key,
            ],
        );
        let (public, der) = (format!("{name}.pub.pem"), format!("{name}.pub.der"));
        openssl(d, &["pkey", "-in", &key, "-pubout", "-out", &public]);
        openssl(
            d,
            &[
                "pkey", "-pubin", "-in", &public, "-outform", "DER", "-out", &der,
            ],
        );
        let der = std::fs::read(d.join(&der)).unwrap();
        let len = if *curve == "P-256" { 32 } else { 48 };
        let point = &der[der.len() - (1 + 2 * len)..];
        assert_eq!(point[0], 4, "uncompressed EC point expected for {name}");
        jwks.insert(
            name.to_string(),
            json!({"kty": "EC", "crv": curve, "x": b64url(&point[1..1 + len]), "y": b64url(&point[1 + len..])}),
        );
    }
    for name in ED_KEYS {
        let key = format!("{name}.key.pem");
        openssl(d, &["genpkey", "-algorithm", "ED25519", "-out", &key]);
        let (public, der) = (format!("{name}.pub.pem"), format!("{name}.pub.der"));
        openssl(d, &["pkey", "-in", &key, "-pubout", "-out", &public]);
        openssl(
            d,
            &[
                "pkey", "-pubin", "-in", &public, "-outform", "DER", "-out", &der,
            ],
        );
        let der = std::fs::read(d.join(&der)).unwrap();
        assert_eq!(der.len(), 44, "Ed25519 SPKI is 44 bytes");
        jwks.insert(
            name.to_string(),
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64url(&der[12..])}),
        );
    }
    for name in CERTS {
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                &format!("{name}.key.pem"),
                "-subj",
                &format!("/CN={name}.idp.test"),
                "-days",
                "365",
                "-out",
                &format!("{name}.cert.pem"),
            ],
        );
    }

    // Certificates outside their validity period, through `openssl ca` (explicit dates).
    std::fs::write(
        d.join("ca.cnf"),
        "[ ca ]\ndefault_ca = CA_default\n[ CA_default ]\ndatabase = index.txt\n\
         new_certs_dir = .\nserial = serial\ndefault_md = sha256\npolicy = policy_any\n\
         unique_subject = no\n[ policy_any ]\ncommonName = supplied\n",
    )
    .unwrap();
    std::fs::write(d.join("index.txt"), "").unwrap();
    std::fs::write(d.join("serial"), "01\n").unwrap();
    openssl(
        d,
        &[
            "req",
            "-new",
            "-key",
            "rsa.key.pem",
            "-subj",
            "/CN=dated.idp.test",
            "-out",
            "rsa.csr",
        ],
    );
    for (out, start, end) in [
        ("rsa.expired.cert.pem", "20200101000000Z", "20210101000000Z"),
        ("rsa.future.cert.pem", "20990101000000Z", "20991231000000Z"),
    ] {
        openssl(
            d,
            &[
                "ca",
                "-batch",
                "-config",
                "ca.cnf",
                "-selfsign",
                "-keyfile",
                "rsa.key.pem",
                "-in",
                "rsa.csr",
                "-startdate",
                start,
                "-enddate",
                end,
                "-notext",
                "-out",
                out,
            ],
        );
    }
    let dates = openssl(
        d,
        &["x509", "-in", "rsa.expired.cert.pem", "-noout", "-enddate"],
    );
    assert!(dates.contains("2021"), "expired certificate: {dates}");

    // PKCS#12 keystores. (`pkcs12 -info` names the MAC digest only since openssl 3.)
    let openssl3 = openssl(d, &["version"]).starts_with("OpenSSL 3");
    let modern = |out: &str, key: &str, cert: &str| {
        openssl(
            d,
            &[
                "pkcs12",
                "-export",
                "-inkey",
                key,
                "-in",
                cert,
                "-name",
                "idp",
                "-keypbe",
                "AES-256-CBC",
                "-certpbe",
                "AES-256-CBC",
                "-macalg",
                "sha256",
                "-passout",
                &pass,
                "-out",
                out,
            ],
        );
        let info = openssl(
            d,
            &["pkcs12", "-info", "-noout", "-in", out, "-passin", &pass],
        );
        assert!(
            info.contains("AES-256-CBC") && (!openssl3 || info.contains("MAC: sha256")),
            "{out} is not a modern keystore:\n{info}"
        );
    };
    modern("rsa.p12", "rsa.key.pem", "rsa.cert.pem");
    modern("rsa.expired.p12", "rsa.key.pem", "rsa.expired.cert.pem");
    modern("rsa1024.p12", "rsa1024.key.pem", "rsa1024.cert.pem");
    let legacy_args = |legacy: bool| {
        let mut a = vec![
            "pkcs12",
            "-export",
            "-inkey",
            "rsa.key.pem",
            "-in",
            "rsa.cert.pem",
            "-name",
            "idp",
            "-passout",
            &pass,
            "-out",
            "rsa.legacy.p12",
        ];
        if legacy {
            a.insert(2, "-legacy");
        }
        a
    };
    // openssl 3 needs -legacy; 1.1.1 has no such option and writes legacy stores by default.
    openssl(d, &legacy_args(openssl3));
    let mut info_args = vec![
        "pkcs12",
        "-info",
        "-noout",
        "-in",
        "rsa.legacy.p12",
        "-passin",
        &pass,
    ];
    if openssl3 {
        info_args.push("-legacy");
    }
    let info = openssl(d, &info_args);
    assert!(
        info.contains("pbeWithSHA1And40BitRC2-CBC")
            && info.contains("pbeWithSHA1And3-KeyTripleDES-CBC")
            && (!openssl3 || info.contains("MAC: sha1")),
        "rsa.legacy.p12 is not RC2-40/3DES/SHA-1:\n{info}"
    );
    std::fs::write(d.join("p12.pass"), format!("{P12_PASSWORD}\n")).unwrap();
    std::fs::write(d.join("garbage.p12"), b"this is not a PKCS#12 file\n").unwrap();

    // The Java truststore.
    let keytool_missing = match Command::new("keytool")
        .arg("-help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Err(e) => Some(format!("`keytool` could not be run ({e})")),
        Ok(_) => {
            for (alias, cert) in [("idp", "rsa.cert.pem"), ("other", "rsa2.cert.pem")] {
                run(
                    d,
                    "keytool",
                    &[
                        "-importcert",
                        "-noprompt",
                        "-storetype",
                        "PKCS12",
                        "-keystore",
                        "rsa.trust.p12",
                        "-storepass",
                        P12_PASSWORD,
                        "-alias",
                        alias,
                        "-file",
                        cert,
                    ],
                );
            }
            None
        }
    };

    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(d).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        // (`openssl ca` also leaves `01.pem`, `02.pem` copies behind: not kept)
        let keep = name.ends_with(".pem") || name.ends_with(".p12") || name == "p12.pass";
        if keep && !name.starts_with(|c: char| c.is_ascii_digit()) {
            files.insert(name, std::fs::read(entry.path()).unwrap());
        }
    }
    if let Some(out) = std::env::var_os("SSOGATE_FIXTURES_OUT") {
        let out = Path::new(&out);
        std::fs::create_dir_all(out).unwrap();
        for (n, c) in &files {
            std::fs::write(out.join(n), c).unwrap();
        }
    }
    Fixtures {
        files,
        jwks,
        keytool_missing,
    }
}

fn from_hex(hex: &str) -> Vec<u8> {
    let hex = hex.trim();
    assert!(hex.len().is_multiple_of(2), "odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

impl GateBuilder {
    /// Put every key fixture into the config directory.
    pub fn key_fixtures(mut self) -> Self {
        for (n, c) in fixtures().all() {
            self = self.file(n, c);
        }
        self
    }
}

// ---------------------------------------------------------------------------------------------
// Configs
// ---------------------------------------------------------------------------------------------

/// One org for [`config`]: `hosts: [<name>.test]`, `accept_bearer: true`, the given keys
/// (each one YAML flow mapping) and extra `field: value` lines.
pub fn org(name: &str, keys: &[&str], extra: &[&str]) -> String {
    let mut s = format!(
        "  {name}:\n    hosts: [{name}.test]\n    login_url: https://portal.{name}.example/login\n    \
         accept_bearer: true\n    keys:\n"
    );
    for k in keys {
        s.push_str(&format!("      - {k}\n"));
    }
    for e in extra {
        s.push_str(&format!("    {e}\n"));
    }
    s
}

/// A config template (ports still as placeholders) with these orgs.
pub fn config(orgs: &[String]) -> String {
    let mut s = String::from(
        "listen: 127.0.0.1:{proxy_port}\nadmin_listen: 127.0.0.1:{admin_port}\n\
         upstream: http://127.0.0.1:{upstream_port}\npublic_url: http://127.0.0.1:{proxy_port}\n\
         session:\n  secret_file: session.key\n  secure: false\norganizations:\n",
    );
    for o in orgs {
        s.push_str(o);
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

/// The key for `alg`: a PEM private key, or the raw secret for HS*.
pub fn encoding_key(alg: Algorithm, key: &[u8]) -> EncodingKey {
    match alg.family() {
        AlgorithmFamily::Hmac => EncodingKey::from_secret(key),
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(key).expect("RSA private key PEM"),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(key).expect("EC private key PEM"),
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(key).expect("Ed25519 private key PEM"),
    }
}

/// A token signed with `alg` and `key` (see [`encoding_key`]), `typ: JWT`, optional `kid`.
pub fn sign(alg: Algorithm, key: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.typ = Some("JWT".into());
    h.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&h, claims, &encoding_key(alg, key)).expect("sign token")
}

/// A token from raw header / payload JSON text, signed with `alg` and `key`.
pub fn sign_raw(header_json: &str, payload_json: &str, alg: Algorithm, key: &[u8]) -> String {
    let msg = format!(
        "{}.{}",
        b64url(header_json.as_bytes()),
        b64url(payload_json.as_bytes())
    );
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), &encoding_key(alg, key), alg)
        .expect("sign raw token");
    format!("{msg}.{sig}")
}

/// The decoded JSON of part `i` (0 header, 1 payload) of a token.
pub fn token_part(token: &str, i: usize) -> Value {
    use base64::Engine as _;
    let part = token.split('.').nth(i).expect("token part");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url part");
    serde_json::from_slice(&bytes).expect("JSON part")
}

// ---------------------------------------------------------------------------------------------
// Bearer requests
// ---------------------------------------------------------------------------------------------

/// `GET path` routed to `org` (Host `<org>.test`) with `Authorization: Bearer token`.
pub fn bearer_to(g: &Gate, org: &str, path: &str, token: &str) -> Resp {
    g.api(path)
        .host(&format!("{org}.test"))
        .header("Authorization", &format!("Bearer {token}"))
        .send()
}

/// Assert that a Bearer request with `token` reaches the app as `sub` of `org`, with no cookie
/// set. Returns the app's echo.
#[track_caller]
pub fn assert_bearer_ok(g: &Gate, org: &str, token: &str, sub: &str, what: &str) -> Value {
    let before = g.upstream.count();
    let r = bearer_to(g, org, "/app/data?x=1", token);
    assert_eq!(
        r.status,
        200,
        "{what}: Bearer token refused by org {org}: {r:#?}\nlogs (tail):\n{}",
        log_tail(g)
    );
    let echo = r.app();
    assert_eq!(g.upstream.count(), before + 1, "{what}: app request count");
    assert_eq!(
        super::app_header(&echo, "x-auth-request-user"),
        vec![sub.to_string()],
        "{what}: principal header"
    );
    assert_eq!(
        super::app_header(&echo, "x-auth-request-org"),
        vec![org.to_string()],
        "{what}: org header"
    );
    assert!(
        r.header_all("set-cookie").is_empty(),
        "{what}: the Bearer path must not set cookies: {r:#?}"
    );
    echo
}

/// Assert that a Bearer request with `token` is refused: 401,
/// `WWW-Authenticate: Bearer error="invalid_token"`, no cookie, not reaching the app.
#[track_caller]
pub fn assert_bearer_refused(g: &Gate, org: &str, token: &str, what: &str) {
    let before = g.upstream.count();
    let r = bearer_to(g, org, "/app/data", token);
    assert_eq!(
        r.status, 401,
        "{what}: should be refused by org {org}: {r:#?}"
    );
    let challenge = r.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with("Bearer") && challenge.contains(r#"error="invalid_token""#),
        "{what}: WWW-Authenticate should be Bearer error=\"invalid_token\": {r:#?}"
    );
    assert!(
        r.header_all("set-cookie").is_empty(),
        "{what}: a refused Bearer token set a cookie: {r:#?}"
    );
    assert_eq!(g.upstream.count(), before, "{what}: reached the app");
}

pub fn log_tail(g: &Gate) -> String {
    let logs = g.logs();
    let lines: Vec<&str> = logs.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// `ssogate_config_generation` from the admin listener.
pub fn config_generation(g: &Gate) -> u64 {
    let m = g.admin("/metrics").body;
    m.lines()
        .find_map(|l| l.strip_prefix("ssogate_config_generation "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .unwrap_or_else(|| panic!("no ssogate_config_generation in /metrics:\n{m}"))
}

/// Poll `f` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// The ssogate command line
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
pub struct CmdOut {
    /// None: killed by a signal, or still running at the deadline (then killed).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// `ssogate <args>`, run to completion.
pub fn ssogate<S: AsRef<OsStr>>(args: &[S]) -> CmdOut {
    let out = Command::new(env!("CARGO_BIN_EXE_ssogate"))
        .args(args)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .output()
        .expect("run ssogate");
    CmdOut {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `ssogate run` on a config written from `yaml` (ports filled) with the default files, every
/// key fixture and `extra`; waits up to 15 s for it to exit (killed after that: `code` None).
pub fn run_until_exit(yaml: &str, extra: &[(&str, &[u8])]) -> CmdOut {
    let dir = tempfile::tempdir().unwrap();
    write_default_files(dir.path());
    for (n, c) in fixtures().all().into_iter().chain(extra.iter().copied()) {
        std::fs::write(dir.path().join(n), c).unwrap();
    }
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, fill(yaml, free_port(), free_port(), free_port())).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ssogate"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ssogate run");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut code = None;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            code = status.code();
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    CmdOut {
        code,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// A JWKS endpoint (the IdP)
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct JwksState {
    body: Mutex<String>,
    status: AtomicU16,
    delay_ms: AtomicU64,
    hits: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A real HTTP/1.1 server (hyper) answering every GET with a JWKS document the test can
/// change, fail (any status) or slow down, counting requests and their maximal concurrency.
pub struct JwksServer {
    pub port: u16,
    st: Arc<JwksState>,
    stop: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl JwksServer {
    pub fn start(body: &str) -> JwksServer {
        let st = Arc::new(JwksState::default());
        *st.body.lock().unwrap() = body.to_string();
        st.status.store(200, Ordering::SeqCst);
        let st2 = st.clone();
        let (port, tx) = super::serve_http(move |_req| serve_jwks(st2.clone()));
        JwksServer {
            port,
            st,
            stop: Mutex::new(Some(tx)),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/.well-known/jwks.json", self.port)
    }

    pub fn set_body(&self, body: &str) {
        *self.st.body.lock().unwrap() = body.to_string();
    }

    pub fn set_status(&self, status: u16) {
        self.st.status.store(status, Ordering::SeqCst);
    }

    pub fn set_delay(&self, d: Duration) {
        self.st
            .delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Requests received so far (counted when they arrive).
    pub fn hits(&self) -> usize {
        self.st.hits.load(Ordering::SeqCst)
    }

    /// Requests being answered right now.
    pub fn in_flight(&self) -> usize {
        self.st.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests ever being answered at the same time.
    pub fn max_concurrency(&self) -> usize {
        self.st.max_in_flight.load(Ordering::SeqCst)
    }

    /// Close the listener; returns once connections are refused.
    pub fn stop(&self) {
        if let Some(tx) = self.stop.lock().unwrap().take() {
            let _ = tx.send(());
        }
        let port = self.port;
        let closed = poll_until(Duration::from_secs(5), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        });
        assert!(closed, "JWKS listener still accepting after stop");
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.lock().unwrap().take() {
            let _ = tx.send(());
        }
    }
}

async fn serve_jwks(st: Arc<JwksState>) -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    /// Leaves the in-flight count also when the client gives up during the delay.
    struct InFlight(Arc<JwksState>);
    impl Drop for InFlight {
        fn drop(&mut self) {
            self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
    }
    st.hits.fetch_add(1, Ordering::SeqCst);
    let now = st.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    st.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(st.clone());
    let delay = st.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = st.status.load(Ordering::SeqCst);
    let body = if status == 200 {
        st.body.lock().unwrap().clone()
    } else {
        format!("{{\"error\":\"status {status}\"}}")
    };
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap()
}
