//! The container image, built and run here: scripts/build-image.sh compiles
//! a static musl binary and builds deploy/Containerfile.local (FROM scratch)
//! with podman; the image then runs the repo's demo config on host
//! networking in front of the demo app and portal (examples/demo.rs), walks
//! flow A, and stops with exit 0 on SIGTERM.
//!
//! Needs root (rootful podman) with podman, runc and musl-tools installed
//! (`scripts/install-deps.sh podman runc musl-tools`; scripts/test.sh does
//! it). Without them the test says why and does nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{
    free_ports, has_command, query_param, repo, run_ok, skip, wait_ready, without_test_env, Jar,
    Metrics, Proc, Req,
};

const TAG: &str = "localhost/ssogate:test";

/// The lines of a Containerfile from its runtime marker on, comments and
/// the binary's COPY source aside.
fn runtime_stage(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let start = text
        .find("# --- runtime")
        .unwrap_or_else(|| panic!("{}: no runtime marker", path.display()));
    text[start..]
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            if l.starts_with("COPY ") {
                // COPY <source> /usr/local/bin/ssogate: only the destination must agree.
                format!("COPY {}", l.rsplit(' ').next().unwrap())
            } else {
                l.to_owned()
            }
        })
        .collect()
}

#[test]
fn both_containerfiles_build_the_same_runtime_image() {
    let repo = repo();
    let from_source = runtime_stage(&repo.join("deploy/Containerfile"));
    let local = runtime_stage(&repo.join("deploy/Containerfile.local"));
    assert_eq!(from_source, local);
    for line in [
        "FROM scratch",
        "COPY /usr/local/bin/ssogate",
        "USER 65532:65532",
        "EXPOSE 8080 9090",
        "ENTRYPOINT [\"/usr/local/bin/ssogate\"]",
        "CMD [\"run\", \"--config\", \"/etc/ssogate/config/config.yaml\"]",
    ] {
        assert!(local.iter().any(|l| l == line), "{line} in {local:?}");
    }
    // The source build is static too.
    let text = std::fs::read_to_string(repo.join("deploy/Containerfile")).unwrap();
    assert!(text.contains("--target x86_64-unknown-linux-musl"));
}

/// Why the image test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some(
            "needs root for rootful podman (run `sudo -E cargo test --test image`)".into(),
        );
    }
    for (tool, package) in [
        ("podman", "podman"),
        ("runc", "runc"),
        ("musl-gcc", "musl-tools"),
    ] {
        if !has_command(tool) {
            return Some(format!(
                "{tool} is missing: `scripts/install-deps.sh {package}` installs it \
                 (scripts/test.sh does)"
            ));
        }
    }
    None
}

/// podman with this test's own containers.conf (runc, no default ulimits:
/// this VM does not let podman set rlimits), never /etc's.
struct Podman {
    conf: PathBuf,
}

impl Podman {
    fn new(dir: &Path) -> Podman {
        let conf = dir.join("containers.conf");
        std::fs::write(
            &conf,
            "[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = \"runc\"\n",
        )
        .unwrap();
        Podman { conf }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("podman");
        cmd.env("CONTAINERS_CONF", &self.conf)
            .args(["--runtime", "runc"]);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run podman")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = run_ok(self.command().args(args), &format!("podman {args:?}"));
        out.stdout.trim().to_owned()
    }
}

/// Removes the container however the test ends.
struct Container<'p> {
    podman: &'p Podman,
    name: String,
}

impl Container<'_> {
    fn logs(&self) -> String {
        let out = self.podman.run(&["logs", &self.name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self
            .podman
            .run(&["rm", "--force", "--time", "0", &self.name]);
    }
}

/// The demo (examples/demo.rs) of this checkout, built if needed.
fn demo_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    without_test_env(&mut build).args(["build", "--quiet", "--example", "demo"]);
    run_ok(build.current_dir(repo()), "cargo build --example demo");
    // target/<profile>/ssogate -> target/<profile>/examples/demo
    let bin = Path::new(env!("CARGO_BIN_EXE_ssogate"));
    let demo = bin.parent().unwrap().join("examples/demo");
    assert!(demo.is_file(), "no {}", demo.display());
    demo
}

/// The repo's config.yaml (the demo config) with its fixed ports moved to
/// free ones; every replacement must hit, so a change of the demo config
/// is noticed here.
fn demo_config(proxy: u16, admin: u16, app: u16, portal: u16) -> String {
    let mut config = std::fs::read_to_string(repo().join("config.yaml")).unwrap();
    for (from, to) in [
        ("listen: 0.0.0.0:8080", format!("listen: 127.0.0.1:{proxy}")),
        (
            "admin_listen: 0.0.0.0:9090",
            format!("admin_listen: 127.0.0.1:{admin}"),
        ),
        (
            "upstream: http://127.0.0.1:3000",
            format!("upstream: http://127.0.0.1:{app}"),
        ),
        (
            "http://localhost:4000",
            format!("http://localhost:{portal}"),
        ),
    ] {
        assert!(config.contains(from), "config.yaml no longer has {from:?}");
        config = config.replace(from, &to);
    }
    config
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn the_image_runs_the_demo_config_walks_flow_a_and_exits_0_on_sigterm() {
    const NAME: &str = "the_image_runs_the_demo_config_walks_flow_a_and_exits_0_on_sigterm";
    if let Some(reason) = missing_prerequisite() {
        return skip(NAME, &reason);
    }
    let started = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let podman = Podman::new(work.path());

    // 1. Build: the static binary (cached in the target dir) and the image.
    let mut build = Command::new(repo().join("scripts/build-image.sh"));
    without_test_env(&mut build)
        .arg(TAG)
        .env("CONTAINERS_CONF", &podman.conf);
    run_ok(&mut build, "scripts/build-image.sh");
    let built = started.elapsed();
    eprintln!("scripts/build-image.sh took {built:?}");

    // 2. What is in it: the binary and nothing else, a non-root user, both ports.
    let size: u64 = podman
        .ok(&["image", "inspect", "--format", "{{.Size}}", TAG])
        .parse()
        .unwrap();
    eprintln!(
        "image {TAG}: {size} bytes ({:.1} MiB)",
        size as f64 / 1048576.0
    );
    assert!(size < 40 << 20, "the image is {size} bytes");
    let config: serde_json::Value = serde_json::from_str(&podman.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config}}",
        TAG,
    ]))
    .unwrap();
    assert_eq!(config["User"], "65532:65532");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/usr/local/bin/ssogate"])
    );
    assert_eq!(
        config["Cmd"],
        serde_json::json!(["run", "--config", "/etc/ssogate/config/config.yaml"])
    );
    for port in ["8080/tcp", "9090/tcp"] {
        assert!(config["ExposedPorts"].get(port).is_some(), "EXPOSE {port}");
    }
    let listing_name = format!("ssogate-image-files-{}", std::process::id());
    podman.ok(&["create", "--name", &listing_name, TAG]);
    let listing = {
        let _guard = Container {
            podman: &podman,
            name: listing_name.clone(),
        };
        let tar = work.path().join("rootfs.tar");
        podman.ok(&["export", "--output", tar.to_str().unwrap(), &listing_name]);
        let out = Command::new("tar").arg("-tf").arg(&tar).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let files: Vec<&str> = listing
        .lines()
        .filter(|l| !l.ends_with('/'))
        .filter(|l| {
            // podman adds empty mount points for /etc/hosts and friends, and /run/.containerenv.
            !matches!(
                l.trim_start_matches("./"),
                "etc/hosts" | "etc/hostname" | "etc/resolv.conf" | "run/.containerenv"
            )
        })
        .collect();
    assert_eq!(
        files
            .iter()
            .map(|l| l.trim_start_matches("./"))
            .collect::<Vec<_>>(),
        ["usr/local/bin/ssogate"],
        "the image holds the binary and nothing else"
    );

    // 3. The demo app and portal on free ports, and the demo config for the container.
    let [proxy, admin, app, portal] = free_ports();
    let mount = work.path().join("config");
    std::fs::create_dir_all(mount.join("demo/secrets")).unwrap();
    std::fs::write(
        mount.join("config.yaml"),
        demo_config(proxy, admin, app, portal),
    )
    .unwrap();
    for secret in ["session.key", "acme.secret"] {
        let to = mount.join("demo/secrets").join(secret);
        std::fs::copy(repo().join("demo/secrets").join(secret), &to).unwrap();
        chmod(&to, 0o644);
    }
    // The container's user (65532) reads the mount.
    for dir in [
        work.path().to_path_buf(),
        mount.clone(),
        mount.join("demo"),
        mount.join("demo/secrets"),
    ] {
        chmod(&dir, 0o755);
    }
    chmod(&mount.join("config.yaml"), 0o644);

    let demo_started = Instant::now();
    let mut demo_cmd = Command::new(demo_binary());
    eprintln!("demo binary ready in {:?}", demo_started.elapsed());
    demo_cmd
        .arg("--app-listen")
        .arg(format!("127.0.0.1:{app}"))
        .arg("--portal-listen")
        .arg(format!("127.0.0.1:{portal}"))
        .arg("--acme-secret")
        .arg(repo().join("demo/secrets/acme.secret"))
        .arg("--gateway-url")
        .arg(format!("http://127.0.0.1:{proxy}"));
    let mut demo = Proc::spawn("demo", demo_cmd, work.path().join("demo.log"));
    demo.wait_for_port(app, Duration::from_secs(20));
    demo.wait_for_port(portal, Duration::from_secs(20));

    // 4. Run the image as Kubernetes would: read-only, no capabilities, config mounted.
    let name = format!("ssogate-image-test-{}", std::process::id());
    let volume = format!("{}:/etc/ssogate/config:ro", mount.display());
    let run_started = Instant::now();
    podman.ok(&[
        "run",
        "--detach",
        "--name",
        &name,
        "--network",
        "host",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--volume",
        &volume,
        TAG,
    ]);
    let container = Container {
        podman: &podman,
        name: name.clone(),
    };
    let ready = wait_ready(admin, Duration::from_secs(30), || {
        let state = podman.ok(&["inspect", "--format", "{{.State.Status}}", &name]);
        assert!(
            state == "running" || state == "created",
            "the container is {state}:\n{}",
            container.logs()
        );
    });
    assert!(ready, "not ready after 30 s:\n{}", container.logs());
    let ready_after = run_started.elapsed();

    // 5. The admin listener.
    let admin_get = |path: &str| Req::get(&format!("http://127.0.0.1:{admin}{path}")).send();
    assert_eq!(admin_get("/healthz").status, 200);
    let metrics = admin_get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("ssogate_config_generation"));
    assert!(metrics.body.contains("ssogate_build_info"));

    // 6. Flow A against the demo portal, as a browser would walk it.
    let gate = |target: &str| format!("http://127.0.0.1:{proxy}{target}");
    let mut jar = Jar::default();
    let first = Req::get(&gate("/reports?q=1"))
        .header("Accept", "text/html")
        .header("Sec-Fetch-Mode", "navigate")
        .send();
    assert_eq!(first.status, 302, "{first:?}");
    let login = first.location().to_owned();
    assert!(
        login.starts_with(&format!("http://localhost:{portal}/sso/dash?")),
        "{login}"
    );
    jar.absorb(&first);
    let callback = query_param(&login, "ssoCallback").expect("ssoCallback");
    assert!(
        callback.starts_with(&gate("/_sso/callback?state=")),
        "{callback}"
    );
    assert_eq!(
        query_param(&login, "redirectPath").as_deref(),
        Some("/reports?q=1")
    );

    let portal_url = format!("http://127.0.0.1:{portal}/sso/login");
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("username", "alice")
        .append_pair("name", "Alice Liddell")
        .append_pair("email", "alice@acme.example")
        .append_pair("groups", "readers,admins")
        .append_pair("ssoCallback", &callback)
        .append_pair("redirectPath", "/reports?q=1")
        .finish();
    let signed = Req::new(None, "POST", &portal_url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.as_bytes())
        .send();
    assert_eq!(
        signed.status, 303,
        "the portal signs in and returns to ssogate"
    );
    let back = signed.location().to_owned();
    assert!(back.starts_with(&callback) && back.contains("token="));
    let token = query_param(&back, "token").unwrap();

    let landed = Req::get(&back)
        .header("Accept", "text/html")
        .jar(&jar)
        .send();
    assert_eq!(landed.status, 302, "{}", landed.body);
    assert_eq!(landed.location(), "/reports?q=1");
    jar.absorb(&landed);
    assert!(
        jar.get("ssogate_session").is_some(),
        "the session cookie is set"
    );

    let page = Req::get(&gate("/reports?q=1"))
        .header("Accept", "text/html")
        .jar(&jar)
        .send();
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("alice@acme.example"),
        "the app sees the user"
    );
    let me = Req::get(&gate("/api/me")).jar(&jar).send().json();
    assert_eq!(me["user"], "alice");
    assert_eq!(me["org"], "acme");
    let metrics = Metrics::parse(&admin_get("/metrics").body);
    let callback_logins = [("method", "callback"), ("result", "ok")];
    assert!(
        metrics
            .find("ssogate_auth_total", &callback_logins)
            .is_some(),
        "the callback login is counted"
    );

    // 7. SIGTERM: drain (nothing in flight) and exit 0.
    let stop = Instant::now();
    podman.ok(&["kill", "--signal", "TERM", &name]);
    let code = podman.ok(&["wait", &name]);
    let stopped_in = stop.elapsed();
    assert_eq!(
        code,
        "0",
        "exit code after SIGTERM; logs:\n{}",
        container.logs()
    );
    assert!(stopped_in < Duration::from_secs(10), "{stopped_in:?}");

    let logs = container.logs();
    let session = jar.get("ssogate_session").unwrap_or_default();
    for secret in [token.as_str(), session] {
        assert!(
            !logs.contains(secret),
            "the container's log holds a token or cookie"
        );
    }
    demo.assert_running();
    drop(container);
    eprintln!(
        "image test: build {built:?}, ready {ready_after:?} after `podman run`, \
         SIGTERM -> exit 0 in {stopped_in:?}, total {:?}",
        started.elapsed()
    );
}
