//! Boots the real guest. Needs root, qemu and a fetched kernel (`.ci/vm-setup.sh`); when
//! they are missing every test here fails and says what is missing.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use lvslab_vm::{OutputMode, RunOptions, RunOutcome, VmError};

/// One guest at a time: the machine has two cores.
static ONE_VM: Mutex<()> = Mutex::new(());

fn vm_lock() -> MutexGuard<'static, ()> {
    ONE_VM
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Options for a captured run, or a failure naming what this host lacks.
fn options() -> RunOptions {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests boot a VM that shares / and must run as root"
    );
    let availability = lvslab_vm::probe();
    if let Some(reason) = availability.skip_reason() {
        panic!("{reason}");
    }
    RunOptions {
        output: OutputMode::Capture,
        cwd: Some(PathBuf::from("/")),
        ..RunOptions::default()
    }
}

fn run(opts: &RunOptions, argv: &[&str]) -> RunOutcome {
    let _one = vm_lock();
    match lvslab_vm::run(opts, argv) {
        Ok(outcome) => outcome,
        Err(e) => panic!("vm run {argv:?} failed: {e}"),
    }
}

/// A fresh host directory for one test, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("lvslab-vm-test-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create test directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn exit_status_is_the_commands() {
    let opts = options();
    let outcome = run(&opts, &["sh", "-c", "exit 7"]);
    assert_eq!(outcome.exit_code, 7);
}

#[test]
fn stdout_and_stderr_round_trip_exactly() {
    let mut opts = options();
    let dir = TempDir::new("bytes");
    // Every byte value, many times over, in an order that is not periodic in 4 KiB.
    let input: Vec<u8> = (0u32..300_000)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .chain(0..=255u8)
        .collect();
    fs::write(dir.0.join("input.bin"), &input).expect("write input");
    opts.cwd = Some(dir.0.clone());
    opts.scratch = Some(dir.0.clone());
    let outcome = run(
        &opts,
        &[
            "sh",
            "-c",
            "cat input.bin; printf 'to stderr\\n' >&2; printf written > \"$LVSLAB_VM_SCRATCH/out.txt\"",
        ],
    );
    assert_eq!(
        outcome.exit_code,
        0,
        "stderr: {}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    assert_eq!(outcome.stdout.len(), input.len(), "stdout length");
    assert!(
        outcome.stdout == input,
        "stdout differs from the file cat printed"
    );
    assert_eq!(
        outcome.stderr, b"to stderr\n",
        "stderr holds only the command's line"
    );
    assert_eq!(
        fs::read(dir.0.join("out.txt")).expect("guest wrote into the scratch share"),
        b"written"
    );
}

#[test]
fn guest_sees_host_binaries_cwd_and_passed_env() {
    let mut opts = options();
    let exe = std::env::current_exe().expect("test binary path");
    let cwd = Path::new(env!("CARGO_MANIFEST_DIR"));
    opts.cwd = Some(cwd.to_path_buf());
    opts.env.push((
        OsString::from("LVSLAB_VM_TEST_EXPLICIT"),
        OsString::from("a b'c"),
    ));
    let script = "pwd; printf '%s\\n' \"$LVSLAB_VM_TEST_EXPLICIT\" \"$LVSLAB_IN_VM\" \"$PATH\"; \
                  \"$0\" --list --exact no_such_test >/dev/null && echo ran-host-binary";
    let exe_text = exe.to_str().expect("test binary path is UTF-8");
    let outcome = run(&opts, &["sh", "-c", script, exe_text]);
    assert_eq!(
        outcome.exit_code,
        0,
        "stderr: {}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let host_path = std::env::var("PATH").expect("PATH is set for cargo test");
    assert_eq!(
        lines,
        [
            cwd.to_str().expect("manifest dir is UTF-8"),
            "a b'c",
            "1",
            host_path.as_str(),
            "ran-host-binary"
        ]
    );
}

#[test]
fn ipvs_modules_load_and_ipvsadm_lists() {
    let mut opts = options();
    opts.modules = vec!["ip_vs_rr".into(), "ip_vs_wrr".into()];
    let outcome = run(
        &opts,
        &["sh", "-c", "modprobe ip_vs && ipvsadm -Ln && grep -E '^ip_vs(_rr|_wrr)? ' /proc/modules | cut -d' ' -f1 | sort"],
    );
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    assert_eq!(
        outcome.exit_code,
        0,
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    assert!(
        stdout.contains("IP Virtual Server version"),
        "ipvsadm said: {stdout}"
    );
    assert!(
        stdout.ends_with("ip_vs\nip_vs_rr\nip_vs_wrr\n"),
        "modules: {stdout}"
    );
}

#[test]
fn tunnel_modules_load() {
    let opts = options();
    // Loading ipip and ip_gre creates their fallback devices in the initial namespace.
    let outcome = run(
        &opts,
        &[
            "sh",
            "-c",
            "modprobe ipip && modprobe ip_gre && ip -o link show tunl0 && ip -o link show gre0",
        ],
    );
    let stdout = String::from_utf8_lossy(&outcome.stdout);
    assert_eq!(
        outcome.exit_code,
        0,
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&outcome.stderr)
    );
    assert!(
        stdout.contains("tunl0@NONE") && stdout.contains("gre0@NONE"),
        "links: {stdout}"
    );
}

#[test]
fn timeout_kills_qemu_and_says_so() {
    let mut opts = options();
    opts.timeout = Duration::from_secs(3);
    // The scratch path appears on qemu's command line, so it identifies this qemu in /proc.
    let marker = TempDir::new("timeout");
    opts.scratch = Some(marker.0.clone());
    // What must hold: the run ends as a timeout (not after the command's 600 s) and no
    // qemu is left. How quickly it ends depends on the machine's load: not asserted.
    let result = {
        let _one = vm_lock();
        lvslab_vm::run(&opts, &["sleep", "600"])
    };
    match result {
        Err(VmError::Timeout { limit, .. }) => assert_eq!(limit, Duration::from_secs(3)),
        other => panic!("expected a timeout, got {other:?}"),
    }
    let needle = marker.0.to_string_lossy().into_owned();
    for entry in fs::read_dir("/proc").expect("list /proc").flatten() {
        if let Ok(cmdline) = fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline);
            assert!(
                !cmdline.contains(&needle),
                "qemu still running: pid {:?}",
                entry.file_name()
            );
        }
    }
}
