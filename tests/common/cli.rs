//! The `ssogate` command line: [`Cli`] runs it; [`check`] (and its verdicts) and
//! [`run_until_exit`] on a config directory written for the purpose.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::{config_dir, free_ports, poll};

#[derive(Debug)]
pub struct CmdOut {
    /// None: killed by a signal, or still running at the deadline (then killed).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// `ssogate <args>`, run in the temporary directory (relative paths of a config must not depend
/// on it) unless [`Cli::dir`] says otherwise, stdin closed, `$SSOGATE_CONFIG` unset.
pub struct Cli(Command);

impl Cli {
    pub fn new<S: AsRef<OsStr>>(args: &[S]) -> Cli {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ssogate"));
        cmd.args(args)
            .current_dir(std::env::temp_dir())
            .env_remove("SSOGATE_CONFIG")
            .stdin(Stdio::null());
        Cli(cmd)
    }

    /// The working directory.
    pub fn dir(mut self, dir: &Path) -> Cli {
        self.0.current_dir(dir);
        self
    }

    /// Sets (`Some`) or removes (`None`) an environment variable.
    pub fn env(mut self, name: &str, value: Option<&str>) -> Cli {
        match value {
            Some(v) => self.0.env(name, v),
            None => self.0.env_remove(name),
        };
        self
    }

    /// Runs to completion.
    pub fn output(mut self) -> CmdOut {
        self.0.output().expect("run ssogate").into()
    }

    /// Starts it, stdout and stderr piped.
    pub fn spawn(mut self) -> Child {
        let cmd = self.0.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().expect("spawn ssogate")
    }

    /// Runs until it exits, or kills it after `timeout` (`code` None then).
    pub fn until_exit(self, timeout: Duration) -> CmdOut {
        let mut child = self.spawn();
        if poll(timeout, || child.try_wait().unwrap()).is_none() {
            let _ = child.kill();
        }
        child.wait_with_output().unwrap().into()
    }
}

impl From<Output> for CmdOut {
    fn from(out: Output) -> CmdOut {
        CmdOut {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// `ssogate check --config` on a [`config_dir`] from `template` (free ports) and `files`.
pub fn check(template: &str, files: &[(&str, &[u8])]) -> CmdOut {
    let dir = config_dir(template, free_ports(), files);
    let config = dir.path().join("config.yaml");
    Cli::new(&["check", "--config", config.to_str().unwrap()]).output()
}

/// `ssogate run --config` on a [`config_dir`] from `template` (free ports) and `files`; waits up
/// to 15 s for it to exit.
pub fn run_until_exit(template: &str, files: &[(&str, &[u8])]) -> CmdOut {
    let dir = config_dir(template, free_ports(), files);
    let config = dir.path().join("config.yaml");
    Cli::new(&["run", "--config", config.to_str().unwrap()]).until_exit(Duration::from_secs(15))
}

/// `check` refusing `template` (with `files`) as it should: exit 1, one of `fields` named on
/// stderr. The output, or what went wrong.
pub fn check_refuses(
    what: &str,
    template: &str,
    files: &[(&str, &[u8])],
    fields: &[&str],
) -> Result<CmdOut, String> {
    let out = check(template, files);
    if out.code != Some(1) {
        return Err(format!(
            "{what}: check should exit 1, got {:?}\nstdout: {}\nstderr: {}",
            out.code, out.stdout, out.stderr
        ));
    }
    if !fields.iter().any(|f| out.stderr.contains(f)) {
        return Err(format!(
            "{what}: stderr should name {fields:?}:\n{}",
            out.stderr
        ));
    }
    Ok(out)
}

/// Asserts that `check` accepts `template` (with `files`): exit 0. The output.
#[track_caller]
pub fn check_accepts(what: &str, template: &str, files: &[(&str, &[u8])]) -> CmdOut {
    let out = check(template, files);
    assert_eq!(
        out.code,
        Some(0),
        "{what}: check should exit 0\nstdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    out
}
