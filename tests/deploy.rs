//! The Kubernetes example in deploy/ must stay a config ssogate accepts:
//! its ConfigMap's config.yaml is checked with the mounts it expects
//! replaced by a temp directory holding stand-in key material.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use serde::Deserialize;

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("the openssl command line is needed");
    assert!(status.success(), "openssl {args:?} failed");
}

#[test]
fn the_kubernetes_example_config_passes_check() {
    let manifest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes.yaml"),
    )
    .unwrap();
    let mut config = None;
    for document in serde_yaml_ng::Deserializer::from_str(&manifest) {
        let value = serde_yaml_ng::Value::deserialize(document).expect("valid YAML");
        if value["kind"].as_str() == Some("ConfigMap") {
            config = value["data"]["config.yaml"].as_str().map(str::to_owned);
        }
    }
    let config = config.expect("a ConfigMap with config.yaml");
    assert!(
        manifest.contains("\"/etc/ssogate/config/config.yaml\""),
        "the sidecar runs the ConfigMap's config"
    );

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["session", "orgs"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    std::fs::write(root.join("session/session.key"), [7u8; 48]).unwrap();
    std::fs::write(root.join("orgs/acme.secret"), [9u8; 48]).unwrap();
    std::fs::write(root.join("orgs/jde.pass"), "changeit\n").unwrap();
    let orgs = root.join("orgs");
    openssl(
        &orgs,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "jde.key",
        ],
    );
    openssl(
        &orgs,
        &[
            "req", "-x509", "-key", "jde.key", "-out", "jde.crt", "-days", "30", "-subj", "/CN=idp",
        ],
    );
    openssl(
        &orgs,
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "jde.key",
            "-in",
            "jde.crt",
            "-name",
            "idp",
            "-passout",
            "pass:changeit",
            "-out",
            "jde.p12",
        ],
    );

    let local = config.replace("/etc/ssogate/", &format!("{}/", root.display()));
    let path = root.join("config.yaml");
    std::fs::write(&path, local).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ssogate"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssogate check refused the deploy example: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
