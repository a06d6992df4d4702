//! The Kubernetes base in deploy/kubernetes/ stays deployable:
//!
//! * every manifest validates offline against the Kubernetes schemas with
//!   `--strict` (the PyPI package kubernetes-validate, installed by
//!   scripts/install-test-tools.sh into a cache outside the clone), for the
//!   oldest release with native sidecars and the newest one it knows;
//! * the PodMonitor (a CRD the schemas do not have) is checked structurally;
//! * the ConfigMap's config passes `ssogate check` with the sample Secrets
//!   materialised where the pod mounts them;
//! * what no schema can say: the Service reaches ssogate's port and never
//!   the app's, ssogate is a native sidecar, no Secret is mounted with
//!   subPath, the probes use the admin port, every container is locked down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::{repo, skip, test_tools, Cli};
use serde::Deserialize;
use serde_json::Value;

/// The oldest Kubernetes release with native sidecars on by default, and the
/// newest the validator knows.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.29.0", "1.37.0"];

/// How long ssogate drains requests in flight after SIGTERM.
const DRAIN_SECONDS: u64 = 25;

fn base_dir() -> PathBuf {
    repo().join("deploy/kubernetes")
}

/// Every YAML document of one file, as JSON values.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            let v = serde_yaml_ng::Value::deserialize(d)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
            serde_json::to_value(v).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn yaml_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(base_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// All objects of the base (kustomization.yaml aside), the sample Secrets included.
fn objects() -> Vec<Value> {
    yaml_files()
        .iter()
        .filter(|p| file_name(p) != "kustomization.yaml")
        .flat_map(|p| documents(p))
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in deploy/kubernetes"))
}

fn array(v: &Value) -> &Vec<Value> {
    static EMPTY: Vec<Value> = Vec::new();
    v.as_array().unwrap_or(&EMPTY)
}

/// The dashboard Deployment's pod spec.
fn pod(objects: &[Value]) -> &Value {
    &find(objects, "Deployment", "dashboard")["spec"]["template"]["spec"]
}

fn container<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    array(list).iter().find(|c| c["name"] == name)
}

fn sidecar(objects: &[Value]) -> &Value {
    container(&pod(objects)["initContainers"], "ssogate")
        .expect("ssogate among the pod's initContainers (a native sidecar)")
}

/// A port given by number or by the name of one of `c`'s container ports.
fn resolve_port(c: &Value, port: &Value) -> u16 {
    if let Some(n) = port.as_u64() {
        return n as u16;
    }
    let name = port.as_str().expect("a port is a number or a name");
    array(&c["ports"])
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("container {} has no port named {name}", c["name"])) as u16
}

/// The ConfigMap's config.yaml, parsed.
fn gate_config(objects: &[Value]) -> (String, Value) {
    let text = find(objects, "ConfigMap", "dashboard-ssogate")["data"]["config.yaml"]
        .as_str()
        .expect("the ConfigMap holds config.yaml")
        .to_owned();
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    (text, serde_json::to_value(value).unwrap())
}

fn port_of(addr: &Value) -> u16 {
    addr.as_str()
        .and_then(|a| a.rsplit_once(':'))
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("not host:port: {addr}"))
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    let wanted = selector["matchLabels"].as_object();
    wanted.is_some_and(|w| !w.is_empty() && w.iter().all(|(k, v)| &labels[k] == v))
}

#[test]
fn every_manifest_passes_the_kubernetes_schemas_strictly() {
    let started = Instant::now();
    let tools = match test_tools("python") {
        Ok(dir) => dir,
        Err(reason) => {
            return skip(
                "every_manifest_passes_the_kubernetes_schemas_strictly",
                &reason,
            )
        }
    };
    let validator = tools.join("venv/bin/kubernetes-validate");
    // Kinds the Kubernetes schemas know; the kustomization and the PodMonitor
    // (a CRD) are checked by the tests below.
    let files: Vec<PathBuf> = yaml_files()
        .into_iter()
        .filter(|p| {
            !matches!(
                file_name(p).as_str(),
                "kustomization.yaml" | "podmonitor.yaml"
            )
        })
        .collect();
    assert!(files.len() >= 7, "{files:?}");
    let validate = |version: &str, files: &[PathBuf]| {
        let out = Command::new(&validator)
            .args(["--strict", "-k", version])
            .args(files)
            .output()
            .expect("run kubernetes-validate");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    for version in KUBERNETES_VERSIONS {
        let (ok, text) = validate(version, &files);
        assert!(ok, "kubernetes-validate --strict -k {version}:\n{text}");
        assert!(
            !text.contains("WARN") && !text.contains("ERROR"),
            "kubernetes-validate -k {version} could not check everything:\n{text}"
        );
        let passed = text.matches(" passed for resource ").count();
        let expected: usize = files.iter().map(|f| documents(f).len()).sum();
        assert_eq!(passed, expected, "every object validated:\n{text}");
    }

    // The validator does refuse what the schema does not allow.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("deployment.yaml");
    let text = std::fs::read_to_string(base_dir().join("deployment.yaml")).unwrap();
    std::fs::write(
        &bad,
        text.replacen(
            "\n          restartPolicy: Always\n",
            "\n          restartPolicy: Always\n          subpath: x\n",
            1,
        ),
    )
    .unwrap();
    let (ok, text) = validate(KUBERNETES_VERSIONS[0], &[bad]);
    assert!(!ok && text.contains("subpath"), "{text}");
    eprintln!("schema validation took {:?}", started.elapsed());
}

#[test]
fn the_kustomization_lists_every_manifest_but_the_sample_secrets() {
    let kustomization = documents(&base_dir().join("kustomization.yaml"));
    let k = &kustomization[0];
    assert_eq!(k["apiVersion"], "kustomize.config.k8s.io/v1beta1");
    assert_eq!(k["kind"], "Kustomization");
    let known: BTreeSet<&str> = [
        "apiVersion",
        "kind",
        "resources",
        "images",
        "labels",
        "commonLabels",
        "namespace",
        "configMapGenerator",
        "secretGenerator",
        "patches",
    ]
    .into();
    for key in k.as_object().unwrap().keys() {
        assert!(
            known.contains(key.as_str()),
            "unknown kustomization field {key}"
        );
    }
    let listed: BTreeSet<String> = array(&k["resources"])
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    let present: BTreeSet<String> = yaml_files()
        .iter()
        .map(|p| file_name(p))
        .filter(|f| f != "kustomization.yaml" && f != "secrets.example.yaml")
        .collect();
    assert_eq!(
        listed, present,
        "the base lists every manifest; the sample Secrets stay out of it"
    );
    for image in array(&k["images"]) {
        let name = image["name"].as_str().unwrap();
        let used = objects().iter().any(|o| {
            let spec = &o["spec"]["template"]["spec"];
            array(&spec["containers"])
                .iter()
                .chain(array(&spec["initContainers"]))
                .any(|c| c["image"].as_str().is_some_and(|i| i.starts_with(name)))
        });
        assert!(used, "images: {name} names no container's image");
    }

    // Where kubectl is at hand, its built-in kustomize renders the base.
    let rendered = Command::new("kubectl")
        .args(["kustomize"])
        .arg(base_dir())
        .output();
    match rendered {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let kinds = text.lines().filter(|l| l.starts_with("kind: ")).count();
            let expected: usize = listed
                .iter()
                .map(|f| documents(&base_dir().join(f)).len())
                .sum();
            assert_eq!(kinds, expected, "kubectl kustomize renders every object");
            assert!(text.contains("image: registry.example.com/ssogate:0.1.0"));
        }
        Ok(out) => panic!(
            "kubectl kustomize failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("note: kubectl is not installed; the base was not rendered"),
    }
}

#[test]
fn the_configmap_config_passes_check_with_the_sample_secrets() {
    let objects = objects();
    let pod = pod(&objects);
    let gate = sidecar(&objects);
    let (config, _) = gate_config(&objects);

    // Lay out every volume the sidecar mounts, as kubelet would, under a temp root.
    let root = tempfile::tempdir().unwrap();
    let at = |mount: &str| root.path().join(mount.trim_start_matches('/'));
    for mount in array(&gate["volumeMounts"]) {
        let name = mount["name"].as_str().unwrap();
        let path = at(mount["mountPath"].as_str().unwrap());
        let volume = array(&pod["volumes"])
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no volume {name}"));
        std::fs::create_dir_all(&path).unwrap();
        let files: BTreeMap<String, Vec<u8>> =
            if let Some(cm) = volume["configMap"]["name"].as_str() {
                let cm = find(&objects, "ConfigMap", cm);
                cm["data"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().as_bytes().to_vec()))
                    .collect()
            } else if let Some(secret) = volume["secret"]["secretName"].as_str() {
                let secret = find(&objects, "Secret", secret);
                let mut files = BTreeMap::new();
                for (k, v) in secret["stringData"].as_object().into_iter().flatten() {
                    files.insert(k.clone(), v.as_str().unwrap().as_bytes().to_vec());
                }
                for (k, v) in secret["data"].as_object().into_iter().flatten() {
                    use base64::Engine as _;
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str().unwrap())
                        .unwrap();
                    files.insert(k.clone(), bytes);
                }
                files
            } else {
                panic!("volume {name} is neither a ConfigMap nor a Secret");
            };
        assert!(!files.is_empty(), "volume {name} holds no file");
        for (file, content) in files {
            std::fs::write(path.join(file), content).unwrap();
        }
    }

    // The image runs the config where the ConfigMap is mounted.
    let containerfile = std::fs::read_to_string(repo().join("deploy/Containerfile")).unwrap();
    let config_path = containerfile
        .lines()
        .find_map(|l| l.strip_prefix("CMD "))
        .and_then(|cmd| serde_json::from_str::<Vec<String>>(cmd).ok())
        .and_then(|args| {
            args.windows(2)
                .find(|w| w[0] == "--config")
                .map(|w| w[1].clone())
        })
        .expect("the image's CMD names --config");
    let args: Vec<String> = array(&gate["args"])
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect();
    let config_path = args
        .windows(2)
        .find(|w| w[0] == "--config")
        .map_or(config_path, |w| w[1].clone());
    let local_config = at(&config_path);
    assert!(
        local_config.is_file(),
        "{config_path} is not where the ConfigMap is mounted"
    );

    // Point the config's absolute paths at the temp root.
    let local = config.replace(
        "/etc/ssogate/",
        &format!("{}/", at("/etc/ssogate").display()),
    );
    assert_ne!(local, config, "the config reads its keys from the mounts");
    std::fs::write(&local_config, local).unwrap();
    let check = || Cli::new(&["check", "--config", local_config.to_str().unwrap()]).output();
    let out = check();
    let stderr = out.stderr;
    assert_eq!(
        out.code,
        Some(0),
        "ssogate check refused the ConfigMap's config:\n{stderr}"
    );
    assert!(
        !stderr.to_lowercase().contains("warn"),
        "ssogate check warns about the ConfigMap's config:\n{stderr}"
    );

    // Take one Secret file away: check must notice (the test can fail).
    let secret_file = at("/etc/ssogate/orgs/acme/hs256.secret");
    std::fs::remove_file(&secret_file).unwrap();
    assert_eq!(check().code, Some(1));
}

#[test]
fn the_service_reaches_only_ssogates_port() {
    let objects = objects();
    let (_, config) = gate_config(&objects);
    let gate = sidecar(&objects);
    let listen = port_of(&config["listen"]);
    let admin = port_of(&config["admin_listen"]);
    let app_port = config["upstream"]
        .as_str()
        .and_then(|u| u.rsplit_once(':'))
        .and_then(|(_, p)| p.trim_end_matches('/').parse::<u16>().ok())
        .unwrap();

    let service = find(&objects, "Service", "dashboard");
    let template = &find(&objects, "Deployment", "dashboard")["spec"]["template"];
    assert!(labels_match(
        &json_selector(&service["spec"]["selector"]),
        &template["metadata"]["labels"]
    ));
    let ports = array(&service["spec"]["ports"]);
    assert!(!ports.is_empty());
    for p in ports {
        let target = resolve_port(gate, &p["targetPort"]);
        assert_eq!(target, listen, "the Service targets ssogate's listen port");
        assert_ne!(target, app_port, "the Service must never reach the app");
        assert_ne!(target, admin, "the admin port stays off the Service");
    }
    assert_eq!(
        resolve_port(gate, &Value::from("http")),
        listen,
        "ssogate's `http` port is its listen port"
    );
    assert_eq!(resolve_port(gate, &Value::from("admin")), admin);

    // The app exposes no port of its own.
    for c in array(&pod(&objects)["containers"]) {
        for p in array(&c["ports"]) {
            assert_ne!(p["containerPort"].as_u64(), Some(app_port as u64));
        }
    }
}

/// A Service's selector is a bare label map; make it a LabelSelector.
fn json_selector(labels: &Value) -> Value {
    serde_json::json!({ "matchLabels": labels })
}

#[test]
fn ssogate_is_a_native_sidecar_with_admin_port_probes_and_directory_mounts() {
    let objects = objects();
    let pod = pod(&objects);
    let gate = sidecar(&objects);
    let (_, config) = gate_config(&objects);
    let admin = port_of(&config["admin_listen"]);

    assert_eq!(gate["restartPolicy"], "Always", "a native sidecar");
    assert!(
        container(&pod["containers"], "ssogate").is_none(),
        "ssogate runs once, as the sidecar"
    );
    assert!(
        container(&pod["containers"], "app").is_some(),
        "the app is the main container"
    );

    for (probe, path) in [
        ("startupProbe", "/readyz"),
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
    ] {
        let get = &gate[probe]["httpGet"];
        assert_eq!(get["path"], path, "{probe}");
        assert_eq!(
            resolve_port(gate, &get["port"]),
            admin,
            "{probe} uses the admin port"
        );
    }

    // No subPath anywhere: kubelet's `..data` swap must reach the watcher.
    for c in array(&pod["containers"])
        .iter()
        .chain(array(&pod["initContainers"]))
    {
        for m in array(&c["volumeMounts"]) {
            assert!(
                m.get("subPath").is_none() && m.get("subPathExpr").is_none(),
                "{} mounts {} with subPath",
                c["name"],
                m["name"]
            );
        }
    }
    // Every Secret the pod uses is mounted into ssogate, read-only.
    for v in array(&pod["volumes"]) {
        if v["secret"].is_object() || v["configMap"].is_object() {
            let mount = array(&gate["volumeMounts"])
                .iter()
                .find(|m| m["name"] == v["name"])
                .unwrap_or_else(|| panic!("volume {} is not mounted into ssogate", v["name"]));
            assert_eq!(mount["readOnly"], true);
        }
    }

    // The grace period covers ssogate's drain (25 s) after the app's exit.
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(
        grace > DRAIN_SECONDS + 5,
        "terminationGracePeriodSeconds {grace}"
    );

    // The pod's replicas share the session secret and a Redis replay store.
    let store = config["replay_store"].as_str().unwrap();
    let redis = find(&objects, "Service", "ssogate-redis");
    let host_port = store.strip_prefix("redis://").unwrap();
    assert!(
        host_port.starts_with(&format!(
            "ssogate-redis:{}/",
            redis["spec"]["ports"][0]["port"]
        )),
        "{store}"
    );
    let redis_pods = &find(&objects, "Deployment", "ssogate-redis")["spec"]["template"];
    assert!(labels_match(
        &json_selector(&redis["spec"]["selector"]),
        &redis_pods["metadata"]["labels"]
    ));
}

#[test]
fn every_container_is_locked_down_with_requests_and_limits() {
    let objects = objects();
    let mut seen = 0;
    for o in objects.iter().filter(|o| o["kind"] == "Deployment") {
        let spec = &o["spec"]["template"]["spec"];
        let pod_sc = &spec["securityContext"];
        assert_eq!(
            spec["automountServiceAccountToken"], false,
            "{}",
            o["metadata"]["name"]
        );
        for c in array(&spec["containers"])
            .iter()
            .chain(array(&spec["initContainers"]))
        {
            seen += 1;
            let name = &c["name"];
            let sc = &c["securityContext"];
            let either = |k: &str| {
                if sc[k].is_null() {
                    pod_sc[k].clone()
                } else {
                    sc[k].clone()
                }
            };
            assert_eq!(either("runAsNonRoot"), true, "{name}: runAsNonRoot");
            assert_eq!(
                either("seccompProfile")["type"],
                "RuntimeDefault",
                "{name}: seccomp"
            );
            assert_eq!(sc["readOnlyRootFilesystem"], true, "{name}");
            assert_eq!(sc["allowPrivilegeEscalation"], false, "{name}");
            assert!(
                array(&sc["capabilities"]["drop"]).contains(&Value::from("ALL")),
                "{name}: drops all capabilities"
            );
            assert!(
                sc["capabilities"]["add"].is_null(),
                "{name} adds capabilities"
            );
            assert!(sc["privileged"].is_null() || sc["privileged"] == false);
            for kind in ["requests", "limits"] {
                for res in ["cpu", "memory"] {
                    assert!(
                        c["resources"][kind][res].is_string(),
                        "{name}: resources.{kind}.{res}"
                    );
                }
            }
        }
    }
    assert!(seen >= 3, "ssogate, the app and Redis");
}

#[test]
fn the_disruption_budget_and_network_policy_fit_the_pods() {
    let objects = objects();
    let deployment = find(&objects, "Deployment", "dashboard");
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let (_, config) = gate_config(&objects);
    let listen = port_of(&config["listen"]);
    let admin = port_of(&config["admin_listen"]);

    let pdb = find(&objects, "PodDisruptionBudget", "dashboard");
    assert!(labels_match(&pdb["spec"]["selector"], labels));
    let replicas = deployment["spec"]["replicas"].as_u64().unwrap();
    let min = pdb["spec"]["minAvailable"].as_u64().unwrap();
    assert!(
        min >= 1 && min < replicas,
        "a drain can proceed and one pod keeps serving"
    );

    let policy = find(&objects, "NetworkPolicy", "dashboard");
    assert!(labels_match(&policy["spec"]["podSelector"], labels));
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_json::json!(["Ingress"])
    );
    let mut open_to_all = BTreeSet::new();
    let mut from_monitoring = BTreeSet::new();
    for rule in array(&policy["spec"]["ingress"]) {
        let ports: Vec<u16> = array(&rule["ports"])
            .iter()
            .map(|p| resolve_port(sidecar(&objects), &p["port"]))
            .collect();
        assert!(!ports.is_empty(), "a rule without ports opens every port");
        let from = array(&rule["from"]);
        if from.is_empty() {
            open_to_all.extend(ports);
        } else {
            for peer in from {
                assert_eq!(
                    peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
                    "monitoring",
                    "only the monitoring namespace is named"
                );
                assert!(peer["podSelector"].is_null() || peer["podSelector"].is_object());
            }
            from_monitoring.extend(ports);
        }
    }
    assert_eq!(
        open_to_all,
        BTreeSet::from([listen]),
        "only ssogate's port is open"
    );
    assert_eq!(
        from_monitoring,
        BTreeSet::from([admin]),
        "the admin port, for scraping"
    );

    let redis_policy = find(&objects, "NetworkPolicy", "ssogate-redis");
    for rule in array(&redis_policy["spec"]["ingress"]) {
        for peer in array(&rule["from"]) {
            assert!(
                labels_match(&peer["podSelector"], labels),
                "only the dashboard pods"
            );
        }
        assert!(!array(&rule["from"]).is_empty());
    }
}

/// The Prometheus Operator's PodMonitor (monitoring.coreos.com/v1), checked
/// field by field against the part of its CRD this base uses.
#[test]
fn the_podmonitor_is_a_valid_podmonitor_for_the_admin_port() {
    let objects = objects();
    let pm = find(&objects, "PodMonitor", "dashboard-ssogate");
    assert_eq!(pm["apiVersion"], "monitoring.coreos.com/v1");
    let allowed = |v: &Value, keys: &[&str], at: &str| {
        let obj = v
            .as_object()
            .unwrap_or_else(|| panic!("{at} is not an object"));
        for k in obj.keys() {
            assert!(keys.contains(&k.as_str()), "{at}: unknown field {k}");
        }
    };
    allowed(
        pm,
        &["apiVersion", "kind", "metadata", "spec"],
        "PodMonitor",
    );
    allowed(
        &pm["metadata"],
        &["name", "namespace", "labels", "annotations"],
        "metadata",
    );
    let spec = &pm["spec"];
    allowed(
        spec,
        &[
            "selector",
            "namespaceSelector",
            "podMetricsEndpoints",
            "jobLabel",
            "podTargetLabels",
            "sampleLimit",
            "targetLimit",
            "labelLimit",
            "attachMetadata",
        ],
        "spec",
    );
    allowed(
        &spec["selector"],
        &["matchLabels", "matchExpressions"],
        "spec.selector",
    );
    let labels =
        &find(&objects, "Deployment", "dashboard")["spec"]["template"]["metadata"]["labels"];
    assert!(
        labels_match(&spec["selector"], labels),
        "selects the dashboard pods"
    );

    let duration = |v: &Value, at: &str| {
        let s = v.as_str().unwrap_or_else(|| panic!("{at} is a string"));
        let ok = !s.is_empty()
            && s.split_inclusive(|c: char| c.is_ascii_alphabetic())
                .all(|part| {
                    let (num, unit) = part.split_at(part.len() - 1);
                    !num.is_empty()
                        && num.chars().all(|c| c.is_ascii_digit())
                        && matches!(unit, "s" | "m" | "h" | "d" | "w" | "y")
                });
        assert!(ok, "{at}: {s} is not a Prometheus duration");
        s.trim_end_matches('s').parse::<u64>().ok()
    };
    let endpoints = array(&spec["podMetricsEndpoints"]);
    assert!(!endpoints.is_empty());
    let gate = sidecar(&objects);
    let (_, config) = gate_config(&objects);
    for (i, e) in endpoints.iter().enumerate() {
        let at = format!("spec.podMetricsEndpoints[{i}]");
        allowed(
            e,
            &[
                "port",
                "portNumber",
                "path",
                "scheme",
                "interval",
                "scrapeTimeout",
                "honorLabels",
                "honorTimestamps",
                "relabelings",
                "metricRelabelings",
            ],
            &at,
        );
        let port = e["port"].as_str().expect("port is a container port name");
        assert_eq!(
            resolve_port(gate, &Value::from(port)),
            port_of(&config["admin_listen"]),
            "{at} scrapes the admin port"
        );
        assert_eq!(e["path"], "/metrics");
        let interval = duration(&e["interval"], &format!("{at}.interval"));
        let timeout = duration(&e["scrapeTimeout"], &format!("{at}.scrapeTimeout"));
        if let (Some(i), Some(t)) = (interval, timeout) {
            assert!(t <= i, "{at}: scrapeTimeout is at most the interval");
        }
    }
}
