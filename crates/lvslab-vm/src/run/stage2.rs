//! The guest side of a run: the second-stage script the host writes for the guest's
//! PID 1, and the control directory the guest reports through (`started`, `stdout`,
//! `stderr`, `rc`, `error`, and the console log).

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU32, Ordering};

use super::options::{share_tag, FALLBACK_PATH};
use super::{RunOptions, CONSOLE_LOG_ENV};
use crate::error::{Result, VmError};
use crate::initramfs::{GUEST_BUSYBOX, GUEST_CTL, NINEP_OPTS, TAG_SCRATCH};

/// What stage 2 does once the guest is up.
pub(super) enum Stage2<'a> {
    Command {
        argv: &'a [OsString],
    },
    Shell {
        shell: OsString,
        size: Option<(u16, u16)>,
    },
}

/// Writes the per-run second stage, run by the host's `/bin/sh` as the guest's PID 1.
/// Every value from the caller is single-quoted, so any byte but NUL survives.
pub(super) fn stage2_script(
    opts: &RunOptions,
    env: &[(OsString, OsString)],
    stage: &Stage2<'_>,
) -> Result<Vec<u8>> {
    let cwd = match &opts.cwd {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().map_err(|e| VmError::io("read", ".", e))?,
    };
    let mut s: Vec<u8> = Vec::new();
    let mut line = |parts: &[&[u8]]| {
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                s.push(b' ');
            }
            s.extend_from_slice(part);
        }
        s.push(b'\n');
    };
    line(&[b"#!/bin/sh"]);
    line(&[b"# lvslab-vm stage 2, written by the host for one run."]);
    line(&[format!("B={GUEST_BUSYBOX}; C={GUEST_CTL}").as_bytes()]);
    line(&[format!("PATH={FALLBACK_PATH}; export PATH").as_bytes()]);
    line(&[br#"fail() { printf '%s\n' "$*" > "$C/error"; $B poweroff -f; }"#]);
    line(&[b"$B hostname lvslab-vm; $B ip link set lo up"]);
    for module in &opts.modules {
        let q = quote(module.as_bytes());
        line(&[
            b"out=$(modprobe --",
            &q,
            b"2>&1) || fail modprobe",
            &q,
            b": \"$out\"",
        ]);
    }
    for (k, share) in opts.shares.iter().enumerate() {
        let q = quote(share.as_os_str().as_bytes());
        line(&[b"$B mkdir -p", &q, b"2>/dev/null"]);
        line(&[
            format!("$B mount -t 9p -o {NINEP_OPTS} {}", share_tag(k)).as_bytes(),
            &q,
            b"|| fail cannot mount a shared folder on",
            &q,
        ]);
    }
    if let Some(scratch) = &opts.scratch {
        let q = quote(scratch.as_os_str().as_bytes());
        line(&[b"$B mkdir -p", &q, b"2>/dev/null"]);
        line(&[
            format!("$B mount -t 9p -o {NINEP_OPTS} {TAG_SCRATCH}").as_bytes(),
            &q,
            b"|| fail cannot mount the scratch share on",
            &q,
        ]);
    }
    let qcwd = quote(cwd.as_os_str().as_bytes());
    let mut exec_env: Vec<u8> = b"/usr/bin/env -i".to_vec();
    for (name, value) in env {
        let mut assignment = name.as_bytes().to_vec();
        assignment.push(b'=');
        assignment.extend_from_slice(value.as_bytes());
        exec_env.push(b' ');
        exec_env.extend_from_slice(&quote(&assignment));
    }
    // `env` would take an argv[0] containing '=' for an assignment; the shell's
    // `exec "$@"` has no such trap and searches PATH as execvp does.
    exec_env.extend_from_slice(b" /bin/sh -c 'exec \"$@\"' lvslab-vm");
    match stage {
        Stage2::Command { argv } => {
            line(&[
                b"cd",
                &qcwd,
                b"|| fail working directory",
                &qcwd,
                b"does not exist in the guest \\(/tmp, /run and /var are fresh tmpfs there\\)",
            ]);
            line(&[b"$B cut -d' ' -f1 /proc/uptime > \"$C/started\""]);
            let mut words: Vec<Vec<u8>> = vec![exec_env];
            words.extend(argv.iter().map(|a| quote(a.as_bytes())));
            words.push(b"</dev/null >\"$C/stdout\" 2>\"$C/stderr\"".to_vec());
            let refs: Vec<&[u8]> = words.iter().map(Vec::as_slice).collect();
            line(&refs);
        }
        Stage2::Shell { shell, size } => {
            if let Some((rows, cols)) = size {
                line(&[format!("$B stty -F /dev/ttyS0 rows {rows} cols {cols}").as_bytes()]);
            }
            line(&[b"cd", &qcwd, b"2>/dev/null || cd /"]);
            line(&[b"$B cut -d' ' -f1 /proc/uptime > \"$C/started\""]);
            line(&[
                b"$B setsid -c",
                &exec_env,
                &quote(shell.as_bytes()),
                b"<>/dev/ttyS0 >&0 2>&0",
            ]);
        }
    }
    line(&[b"echo $? > \"$C/rc\""]);
    line(&[b"$B poweroff -f"]);
    Ok(s)
}

/// Single-quotes bytes for a POSIX shell.
pub(super) fn quote(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 2);
    out.push(b'\'');
    for &b in bytes {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// The per-run directory shared with the guest as its control channel; removed on drop.
pub(super) struct CtlDir {
    pub(super) path: PathBuf,
}

impl CtlDir {
    pub(super) fn create() -> Result<CtlDir> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "lvslab-vm-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).map_err(|e| VmError::io("create directory", &path, e))?;
        Ok(CtlDir { path })
    }

    pub(super) fn console_tail(&self) -> String {
        let path = std::env::var_os(CONSOLE_LOG_ENV)
            .filter(|p| !p.is_empty())
            .map_or_else(|| self.path.join("console.log"), PathBuf::from);
        let text = fs::read(path).unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let lines: Vec<&str> = text.lines().rev().take(30).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// Reads how the guest ended: a setup error, an exit status, or neither.
    pub(super) fn finish_status(&self, qemu_status: ExitStatus) -> Result<i32> {
        if let Ok(message) = fs::read_to_string(self.path.join("error")) {
            return Err(VmError::GuestSetup {
                message: message.trim().to_owned(),
                console_tail: self.console_tail(),
            });
        }
        let rc_path = self.path.join("rc");
        match fs::read_to_string(&rc_path) {
            Ok(text) => text.trim().parse().map_err(|_| VmError::BadCache {
                path: rc_path.clone(),
                detail: format!("exit status file holds {text:?}"),
            }),
            Err(_) => Err(VmError::NoStatus {
                status: qemu_status.to_string(),
                qemu_log: fs::read_to_string(self.path.join("qemu.log"))
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                console_tail: self.console_tail(),
            }),
        }
    }
}

impl Drop for CtlDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::{quote, stage2_script, RunOptions, Stage2};
    use std::ffi::OsString;
    use std::path::PathBuf;
    use std::process::Command;

    #[test]
    fn quoting_survives_the_shell() {
        let nasty: &[u8] = b"it's a $HOME `x` \"q\" \\ \n end";
        let mut script = b"printf %s ".to_vec();
        script.extend_from_slice(&quote(nasty));
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(std::ffi::OsStr::new(
                std::str::from_utf8(&script).expect("test input is UTF-8"),
            ))
            .output()
            .expect("run /bin/sh");
        assert_eq!(out.stdout, nasty);
    }

    #[test]
    fn stage2_passes_argv_and_env_exactly() {
        // Run the command line stage 2 builds on the host's own sh, with the guest-only
        // parts stubbed, and check argv and env arrive unchanged.
        let opts = RunOptions {
            cwd: Some(PathBuf::from("/")),
            ..RunOptions::default()
        };
        let env = vec![
            (OsString::from("PATH"), OsString::from("/usr/bin:/bin")),
            (OsString::from("ODD"), OsString::from("a'b c")),
        ];
        let argv = vec![
            OsString::from("sh"),
            OsString::from("-c"),
            OsString::from("printf '%s|' \"$0\" \"$1\" \"$ODD\"; env | grep -c ."),
            OsString::from("x=y"),
        ];
        let script =
            stage2_script(&opts, &env, &Stage2::Command { argv: &argv }).expect("script builds");
        let text = String::from_utf8(script).expect("script is UTF-8 here");
        let exec_line = text
            .lines()
            .find(|l| l.starts_with("/usr/bin/env -i"))
            .expect("exec line present");
        let exec_line = exec_line
            .split(" </dev/null")
            .next()
            .expect("split keeps the head");
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(exec_line)
            .output()
            .expect("run /bin/sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        // $0 of `sh -c` is the first argument after the script: "x=y".
        assert!(stdout.starts_with("x=y||a'b c|"), "got {stdout:?}");
    }
}
