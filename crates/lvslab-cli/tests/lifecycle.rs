//! The `lvslab` binary's lifecycle as a workshop uses it: up, status, exec, down; two
//! instances side by side; `kill -9` and Ctrl-C in the middle of `up`; labs this kernel
//! cannot build. Root trials are skipped at collection (with the reason) when not root.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use lvslab_netns::journal::{run_dir, NETNS_DIR};
use lvslab_netns::{snapshot, Netns};

const BIN: &str = env!("CARGO_BIN_EXE_lvslab");

/// An instance name of this test run's own: two runs on one machine never share one.
fn unique(base: &str) -> String {
    format!("{base}-{:x}", std::process::id())
}

fn labs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../labs")
}

fn lvslab(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--labs")
        .arg(labs())
        .args(args)
        .output()
        .expect("run lvslab")
}

fn ok(args: &[&str]) -> Result<String, Failed> {
    let out = lvslab(args);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "lvslab {} failed ({}):\n{}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into())
    }
}

fn namespaces_of(instance: &str) -> Vec<String> {
    let prefix = format!("lvslab-{instance}-");
    let mut v: Vec<String> = std::fs::read_dir(NETNS_DIR)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn nothing_left(instance: &str) -> Result<(), Failed> {
    let ns = namespaces_of(instance);
    if !ns.is_empty() {
        return Err(format!("namespaces left behind: {ns:?}").into());
    }
    if run_dir().join(instance).exists() {
        return Err(format!(
            "journal left behind: {}",
            run_dir().join(instance).display()
        )
        .into());
    }
    Ok(())
}

/// Runs `f` and proves the host's own namespace is unchanged afterwards.
fn host_unchanged(f: impl FnOnce() -> Result<(), Failed>) -> Result<(), Failed> {
    let root = Netns::root().map_err(|e| e.to_string())?;
    let before = snapshot(&root).map_err(|e| e.to_string())?;
    let r = f();
    let after = snapshot(&root).map_err(|e| e.to_string())?;
    let d = before.diff(&after);
    r?;
    if d.is_empty() {
        Ok(())
    } else {
        Err(format!("host namespace changed:\n  {}", d.join("\n  ")).into())
    }
}

fn http_answer(instance: &str, node: &str, to: &str) -> Result<String, Failed> {
    let ns = Netns::open(&Path::new(NETNS_DIR).join(format!("lvslab-{instance}-{node}")))
        .map_err(|e| e.to_string())?;
    let to: SocketAddr = to.parse().map_err(|e| format!("{e}"))?;
    lvslab_netns::traffic::http_get(&ns, node, to, Duration::from_secs(3))
        .map_err(|e| e.to_string().into())
}

fn up_status_exec_down() -> Result<(), Failed> {
    let inst = &unique("lc-a");
    host_unchanged(|| {
        let r: Result<(), Failed> = (|| {
            let out = ok(&["up", "nat", "--instance", inst])?;
            if !out.contains(&format!("is up as instance `{inst}`")) {
                return Err(format!("unexpected up output:\n{out}").into());
            }
            let status: serde_json::Value =
                serde_json::from_str(&ok(&["status", "--json"])?).map_err(|e| e.to_string())?;
            let me = status["instances"]
                .as_array()
                .and_then(|a| a.iter().find(|i| i["instance"] == inst.as_str()))
                .ok_or("instance missing from status --json")?;
            if me["complete"] != true
                || me["namespaces"]
                    .as_array()
                    .map_or(0, |a| a.iter().filter(|n| n["present"] == true).count())
                    != 8
            {
                return Err(format!("status: {me}").into());
            }
            if me["processes"][0]["running"] != true {
                return Err(format!("daemon not running: {me}").into());
            }
            let code = lvslab(&["exec", inst, "client", "--", "sh", "-c", "exit 7"])
                .status
                .code();
            if code != Some(7) {
                return Err(format!("exec exit status {code:?}, expected 7").into());
            }
            let name = String::from_utf8_lossy(
                &lvslab(&[
                    "exec",
                    inst,
                    "rs2",
                    "--",
                    "cat",
                    "/proc/sys/net/ipv4/ip_forward",
                ])
                .stdout,
            )
            .trim()
            .to_string();
            if name != "0" {
                return Err(format!("rs2 ip_forward = {name}").into());
            }
            // The daemon's servers answer inside the lab.
            let who = http_answer(inst, "director", "192.168.80.12:8080")?;
            if who != "rs2" {
                return Err(format!("rs2's server answered {who:?}").into());
            }
            Ok(())
        })();
        let down = ok(&["down", inst]);
        r?;
        down?;
        nothing_left(inst)
    })
}

/// The issue's acceptance sequence: the article's wrr 3/2/1 gives exactly 30/20/10 of 60,
/// and after `ipvsadm -E … -s rr` 20/20/20.
fn traffic_and_ipvsadm_on_the_userspace_director() -> Result<(), Failed> {
    let inst = &unique("lc-t");
    host_unchanged(|| {
        let r: Result<(), Failed> = (|| {
            ok(&["up", "nat", "--instance", inst, "--dataplane", "userspace"])?;
            let parse = |s: String| -> Result<serde_json::Value, Failed> {
                serde_json::from_str(&s).map_err(|e| format!("{e}: {s}").into())
            };
            let first = parse(ok(&["traffic", inst, "--count", "60", "--json"])?)?;
            let want = serde_json::json!({"ok": 60, "failed": 0, "by_server": {"rs1": 30, "rs2": 20, "rs3": 10}});
            if first != want {
                return Err(format!("wrr 3/2/1: got {first}, want {want}").into());
            }
            ok(&[
                "ipvsadm",
                "--instance",
                inst,
                "-E",
                "-t",
                "192.168.80.10:80",
                "-s",
                "rr",
            ])?;
            let second = parse(ok(&["traffic", inst, "--count", "60", "--json"])?)?;
            let want = serde_json::json!({"ok": 60, "failed": 0, "by_server": {"rs1": 20, "rs2": 20, "rs3": 20}});
            if second != want {
                return Err(format!("after -E -s rr: got {second}, want {want}").into());
            }
            let listing = ok(&["ipvsadm", "--instance", inst, "-L", "-n"])?;
            for line in [
                "TCP  192.168.80.10:80 rr",
                "  -> 192.168.80.11:8080           Masq    3      0          50",
            ] {
                if !listing.contains(line) {
                    return Err(format!("listing lacks {line:?}:\n{listing}").into());
                }
            }
            // A UDP service added at run time: each datagram from a new source port is a
            // new connection, spread round robin over the udp-echo servers.
            ok(&[
                "ipvsadm",
                "--instance",
                inst,
                "-A",
                "-u",
                "192.168.80.10:53",
                "-s",
                "rr",
            ])?;
            for rs in [
                "192.168.80.11:5353",
                "192.168.80.12:5353",
                "192.168.80.13:5353",
            ] {
                ok(&[
                    "ipvsadm",
                    "--instance",
                    inst,
                    "-a",
                    "-u",
                    "192.168.80.10:53",
                    "-r",
                    rs,
                    "-m",
                ])?;
            }
            let udp = parse(ok(&[
                "traffic", inst, "--proto", "udp", "--port", "53", "--count", "30", "--json",
            ])?)?;
            let want = serde_json::json!({"ok": 30, "failed": 0, "by_server": {"rs1": 10, "rs2": 10, "rs3": 10}});
            if udp != want {
                return Err(format!("udp rr: got {udp}, want {want}").into());
            }
            // The engine's counters: what it forwarded, and drops by reason.
            let stats = ok(&["stats", inst])?;
            if !stats.contains("director: ") || !stats.contains("requests") {
                return Err(format!("stats lacks the director's counters:\n{stats}").into());
            }
            if !(stats.contains("no drops") || stats.contains("REASON")) {
                return Err(format!("stats lacks the drops table:\n{stats}").into());
            }
            let bad = lvslab(&[
                "ipvsadm",
                "--instance",
                inst,
                "-a",
                "-t",
                "192.168.80.10:80",
            ]);
            if bad.status.code() != Some(2) {
                return Err(
                    format!("-a without -r should exit 2, got {:?}", bad.status.code()).into(),
                );
            }
            Ok(())
        })();
        let down = ok(&["down", inst]);
        r?;
        down?;
        nothing_left(inst)
    })
}

/// In the VM (kernel IPVS): `lvslab up nat --dataplane kernel`, 60 requests give exactly
/// 30/20/10, and the real ipvsadm shows the article's service with its weights. (The
/// connection counts ipvsadm lists depend on when the kernel expires entries, so they are
/// not compared: the traffic's own count is the exact check.)
fn kernel_dataplane_in_the_vm() -> Result<(), Failed> {
    let inst = unique("vm-nat");
    let script = format!(
        "set -e; L={BIN}; $L --labs {labs} up nat --instance {inst} --dataplane kernel >/dev/null; \
         $L traffic {inst} --count 60 --json; ip netns exec lvslab-{inst}-director ipvsadm -Ln; $L down {inst}",
        labs = labs().display()
    );
    let out = Command::new(BIN)
        .args(["vm", "run", "--", "sh", "-c", &script])
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "vm run failed ({}):\n{text}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    if !text.contains(r#"{"by_server":{"rs1":30,"rs2":20,"rs3":10},"failed":0,"ok":60}"#) {
        return Err(format!("wrr 3/2/1 did not give 30/20/10:\n{text}").into());
    }
    if !text.contains("TCP  192.168.80.10:80 wrr") {
        return Err(format!("ipvsadm -Ln lacks the article's service:\n{text}").into());
    }
    for (rs, weight) in [
        ("192.168.80.11:8080", 3),
        ("192.168.80.12:8080", 2),
        ("192.168.80.13:8080", 1),
    ] {
        let listed = text.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 4
                && f[0] == "->"
                && f[1] == rs
                && f[2] == "Masq"
                && f[3] == weight.to_string()
        });
        if !listed {
            return Err(format!("ipvsadm -Ln lacks `-> {rs} Masq {weight}`:\n{text}").into());
        }
    }
    Ok(())
}

fn two_instances_side_by_side() -> Result<(), Failed> {
    let (b, c) = (unique("lc-b"), unique("lc-c"));
    let (b, c) = (b.as_str(), c.as_str());
    host_unchanged(|| {
        let r: Result<(), Failed> = (|| {
            ok(&["up", "dr", "--instance", b])?;
            ok(&["up", "dr", "--instance", c])?;
            for i in [b, c] {
                let who = http_answer(i, "director", "192.168.80.13:80")?;
                if who != "rs3" {
                    return Err(format!("{i}: rs3's server answered {who:?}").into());
                }
            }
            let again = lvslab(&["up", "dr", "--instance", b]);
            let err = String::from_utf8_lossy(&again.stderr);
            if again.status.success() || !err.contains("already up") {
                return Err(format!("a second `up` of {b} should be refused, got: {err}").into());
            }
            Ok(())
        })();
        let d1 = ok(&["down", b]);
        let d2 = ok(&["down", c]);
        r?;
        d1?;
        d2?;
        nothing_left(b)?;
        nothing_left(c)
    })
}

fn spawn_slow_up(instance: &str) -> Result<std::process::Child, Failed> {
    Command::new(BIN)
        .arg("--labs")
        .arg(labs())
        .args(["up", "nat", "--instance", instance])
        .env("LVSLAB_STEP_DELAY_MS", "40")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string().into())
}

fn wait_for_namespaces(instance: &str, n: usize) -> Result<(), Failed> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while namespaces_of(instance).len() < n {
        if Instant::now() > deadline {
            return Err(format!("`up` did not create {n} namespaces in time").into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

fn kill_9_midway_then_down() -> Result<(), Failed> {
    let inst = &unique("lc-k");
    host_unchanged(|| {
        let mut child = spawn_slow_up(inst)?;
        wait_for_namespaces(inst, 4)?;
        child.kill().map_err(|e| e.to_string())?; // SIGKILL
        let _ = child.wait();
        let left = namespaces_of(inst);
        if left.is_empty() {
            return Err("kill -9 left nothing to clean: the test did not interrupt `up`".into());
        }
        let status = ok(&["status"])?;
        if !status.contains("INTERRUPTED") {
            return Err(format!("status does not flag the interrupted instance:\n{status}").into());
        }
        ok(&["down", inst])?;
        nothing_left(inst)
    })
}

fn ctrl_c_midway_removes_everything() -> Result<(), Failed> {
    let inst = &unique("lc-i");
    host_unchanged(|| {
        let child = spawn_slow_up(inst)?;
        wait_for_namespaces(inst, 4)?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() || !err.contains("interrupted") {
            return Err(format!("Ctrl-C during up: status {}, stderr {err}", out.status).into());
        }
        nothing_left(inst)
    })
}

fn unbuildable_lab_creates_nothing() -> Result<(), Failed> {
    let dir = std::env::temp_dir().join(format!("lvslab-gre-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let lab = r#"[lab]
name = "gre"
title = "a GRE tunnel"
mode = "tun"

[[node]]
name = "a"
role = "director"
interfaces = { eth0 = ["10.9.0.1/24"], gre1 = ["10.9.9.1/30"] }

[[node]]
name = "b"
role = "real-server"
interfaces = { eth0 = ["10.9.0.2/24"] }

[[link]]
ends = ["a:eth0", "b:eth0"]

[[tunnel]]
node = "a"
name = "gre1"
kind = "gre"
local = "a:eth0"
remote = "b:eth0"
"#;
    std::fs::write(dir.join("lab.toml"), lab).map_err(|e| e.to_string())?;
    let inst = unique("lc-gre");
    let r = host_unchanged(|| {
        let out = lvslab(&["up", dir.to_str().unwrap_or_default(), "--instance", &inst]);
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            let _ = lvslab(&["down", &inst]);
            return Err("up of a GRE lab succeeded on a kernel without GRE".into());
        }
        if !(err.contains("gre is missing") && err.contains("nothing was created")) {
            return Err(format!("the error does not name the missing feature:\n{err}").into());
        }
        nothing_left(&inst)
    });
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn invalid_lab_exits_2() -> Result<(), Failed> {
    let dir = std::env::temp_dir().join(format!("lvslab-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("lab.toml"),
        "[lab]\nname = \"bad\"\ntitle = \"x\"\nmode = \"nat\"\ncolour = 1\n",
    )
    .map_err(|e| e.to_string())?;
    let out = lvslab(&["check", dir.to_str().unwrap_or_default()]);
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(2) || !err.contains("lab.toml:5:1: unknown field `colour`") {
        return Err(format!("check: status {:?}, stderr {err}", out.status.code()).into());
    }
    for lab in ["nat", "dr", "tun", "fullnat"] {
        ok(&["check", lab])?;
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let root = nix::unistd::geteuid().is_root();
    let features = lvslab_netns::probe();
    let has = |n: &str| features.iter().any(|f| f.name == n && f.available);
    let root_skip = (!root).then(|| "needs root: run the tests with sudo".to_string());
    let nft_skip = root_skip.clone().or_else(|| {
        (!has("nft")).then(|| "needs nf_tables in the kernel (see `lvslab doctor`)".to_string())
    });
    let gre_skip = root_skip.clone().or_else(|| {
        has("gre").then(|| "this kernel has GRE, so a GRE lab is buildable here".to_string())
    });
    let vm_skip = root_skip.clone().or_else(|| {
        lvslab_vm::probe()
            .skip_reason()
            .map(|r| format!("no VM can run: {r}"))
    });
    type F = fn() -> Result<(), Failed>;
    let trials: Vec<(&str, F, Option<String>)> = vec![
        (
            "cli::check_exits_2_on_invalid_labs",
            invalid_lab_exits_2,
            None,
        ),
        (
            "cli::up_status_exec_down",
            up_status_exec_down,
            nft_skip.clone(),
        ),
        (
            "cli::two_instances_side_by_side",
            two_instances_side_by_side,
            nft_skip.clone(),
        ),
        (
            "cli::traffic_and_ipvsadm_on_the_userspace_director",
            traffic_and_ipvsadm_on_the_userspace_director,
            nft_skip.clone(),
        ),
        (
            "cli::kernel_dataplane_in_the_vm",
            kernel_dataplane_in_the_vm,
            vm_skip,
        ),
        (
            "cli::kill_9_midway_then_down",
            kill_9_midway_then_down,
            nft_skip.clone(),
        ),
        (
            "cli::ctrl_c_midway_removes_everything",
            ctrl_c_midway_removes_everything,
            nft_skip,
        ),
        (
            "cli::unbuildable_lab_creates_nothing",
            unbuildable_lab_creates_nothing,
            gre_skip,
        ),
    ];
    let trials = trials
        .into_iter()
        .map(|(name, f, skip)| {
            if let Some(why) = &skip {
                eprintln!("skipping {name}: {why}");
            }
            let ignored = skip.is_some();
            Trial::test(name, move || match &skip {
                Some(why) => Err(format!("this trial cannot run here: {why}").into()),
                None => f(),
            })
            .with_ignored_flag(ignored)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
