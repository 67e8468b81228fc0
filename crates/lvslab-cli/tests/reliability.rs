//! lvslab as a hostile or unlucky user meets it: `down` of one instance never touches
//! another, a failed `up` never removes what it did not create, a tampered or corrupt
//! journal is not obeyed, `down --all` leaves `up`s in progress alone, and SIGKILL at a
//! random point of `up` or `down`, followed by `down`, leaves nothing behind. The soak runs
//! `LVSLAB_SOAK_CYCLES` up/down cycles (20 by default; `LVSLAB_SOAK_CYCLES=1000` for the
//! long soak) and `LVSLAB_CHAOS_TRIES` kills of each kind (20 by default), checking after
//! every one that nothing leaked and the host's namespace is unchanged.
//!
//! Every instance here lives in a run directory of this test process's own
//! (`LVSLAB_RUN_DIR`), so `down --all` here never meets another run's instances.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use lvslab_netns::journal::NETNS_DIR;
use lvslab_netns::{snapshot, Netns, NsSnapshot};

const BIN: &str = env!("CARGO_BIN_EXE_lvslab");
const LABS: [&str; 4] = ["nat", "dr", "tun", "fullnat"];

fn labs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../labs")
}

/// A run directory of this process's own (tests needing `down --all` take a subfolder).
fn run_dir(sub: &str) -> PathBuf {
    PathBuf::from(format!("/run/lvslab-test-{:x}/{sub}", std::process::id()))
}

fn unique(base: &str) -> String {
    format!("{base}-{:x}", std::process::id())
}

fn cmd(run: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.env("LVSLAB_RUN_DIR", run)
        .arg("--labs")
        .arg(labs())
        .args(args);
    c
}

fn lvslab(run: &Path, args: &[&str]) -> Output {
    cmd(run, args).output().expect("run lvslab")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(run: &Path, args: &[&str]) -> Result<String, Failed> {
    let out = lvslab(run, args);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "lvslab {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            text(&out)
        )
        .into())
    }
}

/// Nodes and switches of a lab: its namespaces are `lvslab-<instance>-<name>`.
fn lab_namespaces(lab: &str) -> Vec<String> {
    let l = lvslab_spec::load_lab(&lvslab_spec::lab_path(&labs(), lab), &[]).expect("lab loads");
    l.nodes
        .iter()
        .map(|n| n.name.clone())
        .chain(l.switches.iter().map(|s| s.name.clone()))
        .collect()
}

fn netns_path(instance: &str, node: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(format!("lvslab-{instance}-{node}"))
}

/// Everything an instance could leave behind, by exact name.
fn leftovers(run: &Path, instance: &str, lab: &str) -> Vec<String> {
    let mut left = Vec::new();
    for node in lab_namespaces(lab) {
        let p = netns_path(instance, &node);
        if p.exists() {
            left.push(format!("namespace {}", p.display()));
        }
    }
    if let Ok(entries) = std::fs::read_dir(NETNS_DIR) {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&format!(".lvslab-{instance}-")) {
                left.push(format!("staging file {n}"));
            }
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let prefix = format!("{NETNS_DIR}/lvslab-{instance}-");
    for m in mounts.lines().filter_map(|l| l.split(' ').nth(4)) {
        if m.starts_with(&prefix) {
            left.push(format!("mount {m}"));
        }
    }
    if run.join(instance).exists() {
        left.push(format!("journal folder {}", run.join(instance).display()));
    }
    if let Ok(entries) = std::fs::read_dir(run) {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&format!(".new-{instance}-"))
                || n.starts_with(&format!(".old-{instance}-"))
            {
                left.push(format!("staging folder {n}"));
            }
        }
    }
    for pid in daemons_of(instance) {
        left.push(format!("daemon process {pid}"));
    }
    left
}

/// Processes running `lvslab daemon <instance>`.
fn daemons_of(instance: &str) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in entries.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(true);
        if !zombie
            && args
                .windows(2)
                .any(|w| w[0] == b"daemon" && w[1] == instance.as_bytes())
        {
            out.push(pid);
        }
    }
    out
}

/// The text of a failure, to wrap it in context.
fn why(f: Failed) -> String {
    f.message().unwrap_or("failed").to_string()
}

/// Waits (a daemon exits on its own when `up` died before saying go) until nothing of the
/// instance is left, or says what is.
fn nothing_left(run: &Path, instance: &str, lab: &str) -> Result<(), Failed> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = leftovers(run, instance, lab);
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("left behind by `{instance}`:\n  {}", left.join("\n  ")).into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn root_snapshot() -> Result<NsSnapshot, Failed> {
    let root = Netns::root().map_err(|e| e.to_string())?;
    snapshot(&root).map_err(|e| e.to_string().into())
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Runs `f`, then proves the host's namespace and this process's descriptors unchanged.
fn host_unchanged(f: impl FnOnce() -> Result<(), Failed>) -> Result<(), Failed> {
    let before = root_snapshot()?;
    let fds = fd_count();
    let r = f();
    let after = root_snapshot()?;
    r?;
    let d = before.diff(&after);
    if !d.is_empty() {
        return Err(format!("host namespace changed:\n  {}", d.join("\n  ")).into());
    }
    let now = fd_count();
    if now > fds {
        return Err(format!("file descriptors of the test grew from {fds} to {now}").into());
    }
    Ok(())
}

/// A small deterministic generator: the seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("LVSLAB_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("chaos seed {seed} (LVSLAB_CHAOS_SEED={seed} replays it)");
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `down rlp` must not touch the live instance `rlp-a` (no prefix matching).
fn down_never_matches_by_prefix() -> Result<(), Failed> {
    let run = run_dir("prefix");
    let (short, long) = (unique("rlp"), format!("{}-a", unique("rlp")));
    host_unchanged(|| {
        ok(
            &run,
            &["up", "nat", "--instance", &long, "--dataplane", "userspace"],
        )?;
        let r: Result<(), Failed> = (|| {
            let out = lvslab(&run, &["down", &short]);
            if out.status.success() {
                return Err(format!(
                    "`down {short}` succeeded with no such instance:\n{}",
                    text(&out)
                )
                .into());
            }
            for node in lab_namespaces("nat") {
                if !netns_path(&long, &node).exists() {
                    return Err(format!("`down {short}` removed {node} of `{long}`").into());
                }
            }
            let status = ok(&run, &["status"])?;
            if !status
                .lines()
                .any(|l| l.starts_with(&long) && l.contains(" up:"))
            {
                return Err(format!("`{long}` is no longer up:\n{status}").into());
            }
            Ok(())
        })();
        let down = ok(&run, &["down", &long]);
        r?;
        down?;
        nothing_left(&run, &long, "nat")
    })
}

/// An `up` whose namespace name is taken fails, leaves the other namespace untouched and
/// removes everything it built itself.
fn failed_up_keeps_what_it_did_not_create() -> Result<(), Failed> {
    use lvslab_netns::named::{create_mount_point, prepare, publish, remove_owned, Removal};
    let run = run_dir("taken");
    let inst = unique("taken");
    let foreign_path = netns_path(&inst, "director");
    host_unchanged(|| {
        let mut p = prepare(&foreign_path).map_err(|e| e.to_string())?;
        create_mount_point(&mut p).map_err(|e| e.to_string())?;
        let foreign = p.record.clone();
        let ns = publish(p).map_err(|e| e.to_string())?;
        let foreign_inode = ns.inode();
        drop(ns);
        let r: Result<(), Failed> = (|| {
            let out = lvslab(
                &run,
                &["up", "nat", "--instance", &inst, "--dataplane", "userspace"],
            );
            if out.status.success() {
                let _ = lvslab(&run, &["down", &inst]);
                return Err("`up` succeeded over a namespace name that was taken".into());
            }
            if !text(&out).contains("already exists") {
                return Err(
                    format!("the error does not say the name is taken:\n{}", text(&out)).into(),
                );
            }
            let still = Netns::open(&foreign_path)
                .map_err(|e| format!("the foreign namespace is gone: {e}"))?;
            if still.inode() != foreign_inode {
                return Err("the foreign namespace was replaced".into());
            }
            let others: Vec<String> = lab_namespaces("nat")
                .into_iter()
                .filter(|n| n != "director" && netns_path(&inst, n).exists())
                .collect();
            if !others.is_empty() {
                return Err(format!("the failed `up` left {others:?}").into());
            }
            if run.join(&inst).exists() {
                return Err("the failed `up` left its journal".into());
            }
            Ok(())
        })();
        let removed = remove_owned(&foreign).map_err(|e| e.to_string())?;
        r?;
        if removed != Removal::Removed {
            return Err(format!("removing the test's own namespace: {removed:?}").into());
        }
        Ok(())
    })
}

fn journal_path(run: &Path, inst: &str) -> PathBuf {
    run.join(inst).join("journal.json")
}

/// A journal someone else rewrote: unknown pids are not killed (start time 0, another
/// executable), namespaces it names without a matching identity are not removed, and a
/// journal others could write is refused outright.
fn tampered_journal_is_not_obeyed() -> Result<(), Failed> {
    use std::os::unix::fs::PermissionsExt;
    let run = run_dir("tamper");
    let inst = unique("tamper");
    host_unchanged(|| {
        ok(
            &run,
            &["up", "dr", "--instance", &inst, "--dataplane", "userspace"],
        )?;
        let mut victim = Command::new("sleep")
            .arg("60")
            .spawn()
            .map_err(|e| e.to_string())?;
        let other = netns_path(&unique("bystander"), "x");
        let mut p = lvslab_netns::named::prepare(&other).map_err(|e| e.to_string())?;
        lvslab_netns::named::create_mount_point(&mut p).map_err(|e| e.to_string())?;
        let bystander = p.record.clone();
        drop(lvslab_netns::named::publish(p).map_err(|e| e.to_string())?);
        let r: Result<(), Failed> = (|| {
            let jp = journal_path(&run, &inst);
            let mut j: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&jp).map_err(|e| e.to_string())?)
                    .map_err(|e| e.to_string())?;
            j["processes"].as_array_mut().ok_or("no processes")?.extend([
                serde_json::json!({"pid": victim.id(), "start_time": 0, "exe": "", "what": "victim"}),
                serde_json::json!({"pid": victim.id(), "start_time": 1, "exe": "/usr/bin/sleep", "what": "victim"}),
            ]);
            j["namespaces"].as_array_mut().ok_or("no namespaces")?.extend([
                serde_json::json!({"node": "x", "path": other, "staging": format!("{}.x", other.display()), "ns_inode": bystander.ns_inode + 7, "file_inode": bystander.file_inode}),
                serde_json::json!({"node": "y", "path": other}),
            ]);
            std::fs::write(&jp, serde_json::to_vec(&j).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
            // Writable by others: refused, and listed as a problem by status.
            std::fs::set_permissions(&jp, std::fs::Permissions::from_mode(0o666))
                .map_err(|e| e.to_string())?;
            let refused = lvslab(&run, &["down", &inst]);
            if refused.status.success() || !text(&refused).contains("not safe to trust") {
                return Err(format!(
                    "`down` obeyed a world-writable journal:\n{}",
                    text(&refused)
                )
                .into());
            }
            let status: serde_json::Value = serde_json::from_str(&ok(&run, &["status", "--json"])?)
                .map_err(|e| e.to_string())?;
            if !status["problems"]
                .as_array()
                .is_some_and(|p| p.iter().any(|x| x["instance"] == inst.as_str()))
            {
                return Err(format!("status does not list the insecure journal: {status}").into());
            }
            std::fs::set_permissions(&jp, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| e.to_string())?;
            ok(&run, &["down", &inst])?;
            if victim.try_wait().map_err(|e| e.to_string())?.is_some() {
                return Err(
                    "`down` killed a process the journal could not prove was the lab's".into(),
                );
            }
            if !other.exists() {
                return Err("`down` removed a namespace that was not the lab's".into());
            }
            nothing_left(&run, &inst, "dr")
        })();
        let _ = victim.kill();
        let _ = victim.wait();
        let _ = lvslab_netns::named::remove_owned(&bystander);
        if r.is_err() {
            if let Ok(perm) = std::fs::metadata(journal_path(&run, &inst)) {
                let _ = perm;
                let _ = std::fs::set_permissions(
                    journal_path(&run, &inst),
                    std::fs::Permissions::from_mode(0o600),
                );
                let _ = lvslab(&run, &["down", &inst]);
            }
        }
        r
    })
}

/// A corrupt journal is one instance's problem: status and `down --all` still serve the
/// others, and leave the corrupt one for a human.
fn corrupt_journal_does_not_block_the_others() -> Result<(), Failed> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let run = run_dir("corrupt");
    let (good, bad) = (unique("good"), unique("bad"));
    host_unchanged(|| {
        ok(
            &run,
            &["up", "nat", "--instance", &good, "--dataplane", "userspace"],
        )?;
        let bad_dir = run.join(&bad);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&bad_dir)
            .map_err(|e| e.to_string())?;
        let jp = bad_dir.join("journal.json");
        std::fs::write(&jp, b"{\"instance\": \"\xff\xfe not json").map_err(|e| e.to_string())?;
        std::fs::set_permissions(&jp, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        let r: Result<(), Failed> = (|| {
            let status = ok(&run, &["status"])?;
            if !status
                .lines()
                .any(|l| l.starts_with(&good) && l.contains(" up:"))
                || !status.contains("UNREADABLE")
            {
                return Err(format!("status with one corrupt journal:\n{status}").into());
            }
            let all = ok(&run, &["down", "--all"])?;
            if !all.contains(&format!("instance `{good}` is down"))
                || !all.contains(&format!("skipped `{bad}`"))
            {
                return Err(format!("down --all with one corrupt journal:\n{all}").into());
            }
            if !jp.exists() {
                return Err("down --all removed a journal it could not read".into());
            }
            nothing_left(&run, &good, "nat")
        })();
        let _ = std::fs::remove_dir_all(&bad_dir);
        let _ = lvslab(&run, &["down", &good]);
        r
    })
}

/// `down --all` while an `up` is still building: that instance is skipped (and says so),
/// the `up` completes and serves.
fn down_all_skips_an_up_in_progress() -> Result<(), Failed> {
    let run = run_dir("progress");
    let inst = unique("busy");
    host_unchanged(|| {
        let child = cmd(
            &run,
            &["up", "nat", "--instance", &inst, "--dataplane", "userspace"],
        )
        .env("LVSLAB_STEP_DELAY_MS", "30")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !netns_path(&inst, "client").exists() {
            if Instant::now() > deadline {
                return Err("`up` made no namespace in time".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let all = ok(&run, &["down", "--all"]);
        let up = child.wait_with_output().map_err(|e| e.to_string())?;
        let r: Result<(), Failed> = (|| {
            let all = all?;
            if !all.contains(&format!("skipped `{inst}`")) {
                return Err(format!("down --all did not skip the `up` in progress:\n{all}").into());
            }
            if !up.status.success() {
                return Err(format!("the `up` that down --all met failed:\n{}", text(&up)).into());
            }
            let status = ok(&run, &["status"])?;
            if !status
                .lines()
                .any(|l| l.starts_with(&inst) && l.contains(" up:"))
            {
                return Err(format!("not up after down --all passed it by:\n{status}").into());
            }
            Ok(())
        })();
        let down = ok(&run, &["down", &inst]);
        r?;
        down?;
        nothing_left(&run, &inst, "nat")
    })
}

/// A folder an `up` began and never renamed into place (it died): `down --all` removes
/// it, and the name is free again.
fn a_dead_ups_staging_folder_is_cleaned() -> Result<(), Failed> {
    use std::os::unix::fs::DirBuilderExt;
    let run = run_dir("staging");
    let inst = unique("stale");
    host_unchanged(|| {
        std::fs::create_dir_all(&run).map_err(|e| e.to_string())?;
        // Pid 1 is alive but is not an `lvslab up`: the journal's creator record decides.
        let stale = run.join(format!(".new-{inst}-1"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&stale)
            .map_err(|e| e.to_string())?;
        let journal = serde_json::json!({"instance": inst, "lab": "nat", "lab_file": "/x", "params": [],
            "dataplane": "userspace", "created_unix": 1, "namespaces": [], "processes": [], "complete": false,
            "creator": {"pid": 1, "start_time": 1, "exe": "/nonexistent/lvslab", "what": "lvslab up"}});
        std::fs::write(stale.join("journal.json"), journal.to_string())
            .map_err(|e| e.to_string())?;
        let all = ok(&run, &["down", "--all"])?;
        if stale.exists() || !all.contains(".new-") {
            return Err(format!("the stale staging folder stays:\n{all}").into());
        }
        ok(
            &run,
            &["up", "nat", "--instance", &inst, "--dataplane", "userspace"],
        )?;
        ok(&run, &["down", &inst])?;
        nothing_left(&run, &inst, "nat")
    })
}

/// A daemon whose `up` died before recording it never gets its go and exits at once.
fn a_daemon_without_go_does_nothing() -> Result<(), Failed> {
    let run = run_dir("nogo");
    let inst = unique("nogo");
    let out = cmd(&run, &["daemon", &inst])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("daemon without go: {}\n{}", out.status, text(&out)).into());
    }
    if run.join(&inst).exists() {
        return Err("a daemon without go created the instance folder".into());
    }
    Ok(())
}

/// Whatever the umask, the instance's folder is 0700 and its journal, log, ready file and
/// control socket are 0600.
fn modes_are_private_whatever_the_umask() -> Result<(), Failed> {
    use std::os::unix::fs::PermissionsExt;
    let run = run_dir("umask");
    let inst = unique("umask");
    host_unchanged(|| {
        let out = Command::new("sh")
            .env("LVSLAB_RUN_DIR", &run)
            .arg("-c")
            .arg(r#"umask 000; exec "$0" --labs "$1" up nat --instance "$2" --dataplane userspace"#)
            .arg(BIN)
            .arg(labs())
            .arg(&inst)
            .output()
            .map_err(|e| e.to_string())?;
        let r: Result<(), Failed> = (|| {
            if !out.status.success() {
                return Err(format!("up under umask 000 failed:\n{}", text(&out)).into());
            }
            let dir = run.join(&inst);
            let mut wrong = Vec::new();
            for (path, want) in [
                (dir.clone(), 0o700),
                (dir.join("journal.json"), 0o600),
                (dir.join("daemon.log"), 0o600),
                (dir.join("ready"), 0o600),
                (dir.join("control.sock"), 0o600),
            ] {
                let mode = std::fs::symlink_metadata(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .permissions()
                    .mode()
                    & 0o777;
                if mode != want {
                    wrong.push(format!("{} is {mode:o}, not {want:o}", path.display()));
                }
            }
            if wrong.is_empty() {
                Ok(())
            } else {
                Err(wrong.join("\n").into())
            }
        })();
        let down = ok(&run, &["down", &inst]);
        r?;
        down?;
        nothing_left(&run, &inst, "nat")
    })
}

/// Set by this test binary when it re-runs itself as another user, to play the client.
const STRANGER_SOCKET: &str = "LVSLAB_TEST_STRANGER_SOCKET";

/// Even with the folder and socket opened to everyone (a mistake by hand), a user who is
/// neither root nor the instance's owner is refused by the control socket.
fn a_stranger_is_refused_by_the_control_socket() -> Result<(), Failed> {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let run = run_dir("stranger");
    let inst = unique("stranger");
    host_unchanged(|| {
        ok(
            &run,
            &["up", "nat", "--instance", &inst, "--dataplane", "userspace"],
        )?;
        let dir = run.join(&inst);
        let sock = dir.join("control.sock");
        let r: Result<(), Failed> = (|| {
            for (p, m) in [
                (run.clone(), 0o711),
                (dir.clone(), 0o711),
                (sock.clone(), 0o666),
            ] {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m))
                    .map_err(|e| format!("chmod {}: {e}", p.display()))?;
            }
            let out = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
                .env(STRANGER_SOCKET, &sock)
                .uid(65534)
                .gid(65534)
                .output()
                .map_err(|e| e.to_string())?;
            let said = text(&out);
            if !said.contains("uid 65534 may not control this instance") {
                return Err(format!("a stranger was not refused:\n{said}").into());
            }
            // The owner (root here) still is served.
            let listing = ok(&run, &["ipvsadm", "--instance", &inst, "-L", "-n"])?;
            if !listing.contains("192.168.80.10:80") {
                return Err(format!("root was not served:\n{listing}").into());
            }
            Ok(())
        })();
        for (p, m) in [(run.clone(), 0o700), (dir.clone(), 0o700)] {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m));
        }
        let down = ok(&run, &["down", &inst]);
        r?;
        down?;
        nothing_left(&run, &inst, "nat")
    })
}

/// The client half of [`a_stranger_is_refused_by_the_control_socket`], run as uid 65534.
fn play_stranger(sock: &Path) {
    use std::io::{BufRead, BufReader, Write};
    match std::os::unix::net::UnixStream::connect(sock) {
        Ok(mut s) => {
            let _ = s.write_all(b"{\"op\":\"ipvsadm\",\"director\":null,\"args\":[\"-C\"]}\n");
            let mut line = String::new();
            let _ = BufReader::new(&s).read_line(&mut line);
            println!("{line}");
        }
        Err(e) => println!("connect: {e}"),
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGKILL at a random point of `up` (and of `down`), then `down`: nothing is left.
fn chaos_kills() -> Result<(), Failed> {
    let run = run_dir("chaos");
    let tries = env_count("LVSLAB_CHAOS_TRIES", 20);
    let mut rng = Rng::from_env();
    host_unchanged(|| {
        for t in 0..tries {
            let lab = LABS[rng.below(4) as usize];
            let inst = format!("{}-{t}", unique("ck"));
            // Kill `up` somewhere between its first moment and its end (~0.2–0.5 s here).
            let mut up = cmd(
                &run,
                &["up", lab, "--instance", &inst, "--dataplane", "userspace"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
            std::thread::sleep(Duration::from_millis(rng.below(600)));
            kill(&mut up);
            let out = lvslab(&run, &["down", &inst]);
            let said = text(&out);
            if !out.status.success() && !said.contains("no instance") {
                return Err(
                    format!("try {t} ({lab}): down after kill -9 of up failed:\n{said}").into(),
                );
            }
            nothing_left(&run, &inst, lab)
                .map_err(|e| format!("try {t} ({lab}), up killed: {}", why(e)))?;

            // Kill `down` somewhere in its work, then finish it.
            ok(
                &run,
                &["up", lab, "--instance", &inst, "--dataplane", "userspace"],
            )?;
            let mut down = cmd(&run, &["down", &inst])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| e.to_string())?;
            std::thread::sleep(Duration::from_millis(rng.below(120)));
            kill(&mut down);
            let again = lvslab(&run, &["down", &inst]);
            let said = text(&again);
            if !again.status.success() && !said.contains("no instance") {
                return Err(
                    format!("try {t} ({lab}): down after kill -9 of down failed:\n{said}").into(),
                );
            }
            nothing_left(&run, &inst, lab)
                .map_err(|e| format!("try {t} ({lab}), down killed: {}", why(e)))?;
        }
        eprintln!("chaos: {tries} kills of up and {tries} of down, nothing left behind");
        Ok(())
    })
}

/// Up/down cycles over the four labs; after each, nothing is left and the host is as
/// it was.
fn soak_up_down_cycles() -> Result<(), Failed> {
    let run = run_dir("soak");
    let cycles = env_count("LVSLAB_SOAK_CYCLES", 20);
    let before = root_snapshot()?;
    let fds = fd_count();
    let started = Instant::now();
    for c in 0..cycles {
        let lab = LABS[(c % 4) as usize];
        let inst = format!("{}-{c}", unique("soak"));
        ok(
            &run,
            &["up", lab, "--instance", &inst, "--dataplane", "userspace"],
        )?;
        ok(&run, &["down", &inst])?;
        nothing_left(&run, &inst, lab).map_err(|e| format!("cycle {c}: {}", why(e)))?;
        let d = before.diff(&root_snapshot()?);
        if !d.is_empty() {
            return Err(format!("cycle {c}: host namespace changed:\n  {}", d.join("\n  ")).into());
        }
        if fd_count() > fds {
            return Err(format!(
                "cycle {c}: file descriptors grew from {fds} to {}",
                fd_count()
            )
            .into());
        }
    }
    let left: BTreeSet<String> = std::fs::read_dir(&run)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if !left.is_empty() {
        return Err(format!("the run directory still holds {left:?}").into());
    }
    eprintln!(
        "soak: {cycles} up/down cycles in {:.1?}, 0 leaks, host namespace unchanged",
        started.elapsed()
    );
    Ok(())
}

fn main() {
    if let Some(sock) = std::env::var_os(STRANGER_SOCKET) {
        return play_stranger(Path::new(&sock));
    }
    let mut args = Arguments::from_args();
    // One at a time: the checks count this process's descriptors and read the host's
    // namespace, which a neighbouring trial would disturb.
    args.test_threads = Some(1);
    let root = nix::unistd::geteuid().is_root();
    let features = lvslab_netns::probe();
    let has = |n: &str| features.iter().any(|f| f.name == n && f.available);
    let skip = if !root {
        Some("needs root: run the tests with sudo".to_string())
    } else if !has("nft") {
        Some("needs nftables (the labs' NAT rules)".to_string())
    } else {
        None
    };
    type F = fn() -> Result<(), Failed>;
    let trials: Vec<(&str, F)> = vec![
        (
            "reliability::down_never_matches_by_prefix",
            down_never_matches_by_prefix,
        ),
        (
            "reliability::failed_up_keeps_what_it_did_not_create",
            failed_up_keeps_what_it_did_not_create,
        ),
        (
            "reliability::tampered_journal_is_not_obeyed",
            tampered_journal_is_not_obeyed,
        ),
        (
            "reliability::corrupt_journal_does_not_block_the_others",
            corrupt_journal_does_not_block_the_others,
        ),
        (
            "reliability::down_all_skips_an_up_in_progress",
            down_all_skips_an_up_in_progress,
        ),
        (
            "reliability::a_dead_ups_staging_folder_is_cleaned",
            a_dead_ups_staging_folder_is_cleaned,
        ),
        (
            "reliability::a_daemon_without_go_does_nothing",
            a_daemon_without_go_does_nothing,
        ),
        (
            "reliability::modes_are_private_whatever_the_umask",
            modes_are_private_whatever_the_umask,
        ),
        (
            "reliability::a_stranger_is_refused_by_the_control_socket",
            a_stranger_is_refused_by_the_control_socket,
        ),
        ("reliability::chaos_kills", chaos_kills),
        ("reliability::soak_up_down_cycles", soak_up_down_cycles),
    ];
    let trials = trials
        .into_iter()
        .map(|(name, f)| {
            if let Some(why) = &skip {
                eprintln!("skipping {name}: {why}");
            }
            let ignored = skip.is_some();
            let skip = skip.clone();
            Trial::test(name, move || match &skip {
                Some(why) => Err(format!("this trial cannot run here: {why}").into()),
                None => f(),
            })
            .with_ignored_flag(ignored)
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    let _ = std::fs::remove_dir_all(run_dir(""));
    conclusion.exit();
}
