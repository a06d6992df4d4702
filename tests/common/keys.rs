//! Key material for the key / Bearer / JWKS tests (`tests/keys.rs`, `tests/bearer.rs`,
//! `tests/jwks_url.rs`).
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

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{json, Value};

use super::{b64url, has_command, run_ok};

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
            .unwrap_or_else(|| panic!("no fixture {name:?} (have {:?})", self.files.keys()))
    }

    /// Every generated file, as a config directory's extra files.
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

/// Runs `program` in `dir` with `args` (split at spaces): its stdout and stderr; panics when it
/// fails.
fn run(dir: &Path, program: &str, args: &str) -> String {
    let mut cmd = Command::new(program);
    cmd.args(args.split_whitespace()).current_dir(dir);
    let out = run_ok(&mut cmd, &format!("key fixtures: {program} {args}"));
    out.stdout + &out.stderr
}

fn generate() -> Fixtures {
    let tmp = tempfile::tempdir().expect("fixture tempdir");
    let d = tmp.path();
    let openssl = |args: &str| run(d, "openssl", args);
    let pass = format!("pass:{P12_PASSWORD}");
    let mut jwks = BTreeMap::new();

    for (name, bits) in RSA_KEYS {
        let (key, public) = (format!("{name}.key.pem"), format!("{name}.pub.pem"));
        openssl(&format!(
            "genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:{bits} -out {key}"
        ));
        openssl(&format!("pkey -in {key} -pubout -out {public}"));
        let modulus = openssl(&format!("rsa -pubin -in {public} -noout -modulus"));
        let hex = modulus
            .lines()
            .find_map(|l| l.trim().strip_prefix("Modulus="))
            .unwrap_or_else(|| panic!("no modulus in {modulus:?}"));
        let text = openssl(&format!("rsa -pubin -in {public} -noout -text"));
        assert!(text.contains("Exponent: 65537"), "{text}");
        let n: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        assert_eq!(n.len() * 8, *bits as usize, "modulus of {name}");
        jwks.insert(
            name.to_string(),
            json!({"kty": "RSA", "n": b64url(&n), "e": "AQAB"}),
        );
    }
    for name in ["rsa", "rsa1024"] {
        openssl(&format!(
            "rsa -in {name}.key.pem -RSAPublicKey_out -out {name}.pkcs1.pub.pem"
        ));
    }
    // The DER SubjectPublicKeyInfo of an EC or Ed25519 key, whose tail is the public point.
    let der = |name: &str| {
        openssl(&format!(
            "pkey -in {name}.key.pem -pubout -out {name}.pub.pem"
        ));
        openssl(&format!(
            "pkey -pubin -in {name}.pub.pem -outform DER -out {name}.pub.der"
        ));
        std::fs::read(d.join(format!("{name}.pub.der"))).unwrap()
    };
    for (name, curve) in EC_KEYS {
        openssl(&format!(
            "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:{curve} -out {name}.key.pem"
        ));
        let der = der(name);
        let len = if *curve == "P-256" { 32 } else { 48 };
        let point = &der[der.len() - (1 + 2 * len)..];
        assert_eq!(point[0], 4, "uncompressed EC point expected for {name}");
        jwks.insert(
            name.to_string(),
            json!({"kty": "EC", "crv": curve, "x": b64url(&point[1..1 + len]), "y": b64url(&point[1 + len..])}),
        );
    }
    for name in ED_KEYS {
        openssl(&format!("genpkey -algorithm ED25519 -out {name}.key.pem"));
        let der = der(name);
        assert_eq!(der.len(), 44, "Ed25519 SPKI is 44 bytes");
        jwks.insert(
            name.to_string(),
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64url(&der[12..])}),
        );
    }
    for name in CERTS {
        openssl(&format!(
            "req -x509 -new -key {name}.key.pem -subj /CN={name}.idp.test -days 365 \
             -out {name}.cert.pem"
        ));
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
    openssl("req -new -key rsa.key.pem -subj /CN=dated.idp.test -out rsa.csr");
    for (out, start, end) in [
        ("rsa.expired.cert.pem", "20200101000000Z", "20210101000000Z"),
        ("rsa.future.cert.pem", "20990101000000Z", "20991231000000Z"),
    ] {
        openssl(&format!(
            "ca -batch -config ca.cnf -selfsign -keyfile rsa.key.pem -in rsa.csr \
             -startdate {start} -enddate {end} -notext -out {out}"
        ));
    }
    let dates = openssl("x509 -in rsa.expired.cert.pem -noout -enddate");
    assert!(dates.contains("2021"), "expired certificate: {dates}");

    // PKCS#12 keystores. (`pkcs12 -info` names the MAC digest only since openssl 3.)
    let openssl3 = openssl("version").starts_with("OpenSSL 3");
    for (out, key, cert) in [
        ("rsa.p12", "rsa.key.pem", "rsa.cert.pem"),
        ("rsa.expired.p12", "rsa.key.pem", "rsa.expired.cert.pem"),
        ("rsa1024.p12", "rsa1024.key.pem", "rsa1024.cert.pem"),
    ] {
        openssl(&format!(
            "pkcs12 -export -inkey {key} -in {cert} -name idp -keypbe AES-256-CBC \
             -certpbe AES-256-CBC -macalg sha256 -passout {pass} -out {out}"
        ));
        let info = openssl(&format!("pkcs12 -info -noout -in {out} -passin {pass}"));
        assert!(
            info.contains("AES-256-CBC") && (!openssl3 || info.contains("MAC: sha256")),
            "{out} is not a modern keystore:\n{info}"
        );
    }
    // openssl 3 needs -legacy; 1.1.1 has no such option and writes legacy stores by default.
    let legacy = if openssl3 { "-legacy" } else { "" };
    openssl(&format!(
        "pkcs12 -export {legacy} -inkey rsa.key.pem -in rsa.cert.pem -name idp \
         -passout {pass} -out rsa.legacy.p12"
    ));
    let info = openssl(&format!(
        "pkcs12 -info -noout -in rsa.legacy.p12 -passin {pass} {legacy}"
    ));
    assert!(
        info.contains("pbeWithSHA1And40BitRC2-CBC")
            && info.contains("pbeWithSHA1And3-KeyTripleDES-CBC")
            && (!openssl3 || info.contains("MAC: sha1")),
        "rsa.legacy.p12 is not RC2-40/3DES/SHA-1:\n{info}"
    );
    std::fs::write(d.join("p12.pass"), format!("{P12_PASSWORD}\n")).unwrap();
    std::fs::write(d.join("garbage.p12"), b"this is not a PKCS#12 file\n").unwrap();

    // The Java truststore.
    let keytool_missing = if has_command("keytool") {
        for (alias, cert) in [("idp", "rsa.cert.pem"), ("other", "rsa2.cert.pem")] {
            run(
                d,
                "keytool",
                &format!(
                    "-importcert -noprompt -storetype PKCS12 -keystore rsa.trust.p12 \
                     -storepass {P12_PASSWORD} -alias {alias} -file {cert}"
                ),
            );
        }
        None
    } else {
        Some("`keytool` is not on PATH".to_string())
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
