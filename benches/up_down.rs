//! `lvslab up nat` + `lvslab down` against `lvslab plan nat | bash` + its `--down` script,
//! interleaved in one run, median of N rounds each. Needs root, iproute2, ethtool, nft.
//!
//! Run: `cargo bench -p lvslab-cli --bench up_down` (LVSLAB_BENCH_ROUNDS to change N).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_lvslab");

fn labs() -> String {
    format!("{}/../../labs", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Vec<u8> {
    let out = Command::new(BIN)
        .arg("--labs")
        .arg(labs())
        .args(args)
        .output()
        .expect("run lvslab");
    assert!(
        out.status.success(),
        "lvslab {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn bash(script: &[u8]) {
    let mut child = Command::new("bash")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("bash");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script)
        .expect("write script");
    assert!(
        child.wait().expect("bash").success(),
        "the shell plan failed"
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("up_down bench needs root");
        std::process::exit(1);
    }
    let rounds: usize = std::env::var("LVSLAB_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    // The shell plan is generated once, outside the timing: it is what a user pipes.
    let up_script = run(&[
        "plan",
        "nat",
        "--instance",
        "bsh",
        "--dataplane",
        "userspace",
    ]);
    let down_script = run(&[
        "plan",
        "nat",
        "--instance",
        "bsh",
        "--dataplane",
        "userspace",
        "--down",
    ]);
    let (mut ours, mut shell) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        run(&["up", "nat", "--instance", "bup", "--dataplane", "userspace"]);
        run(&["down", "bup"]);
        ours.push(t.elapsed());
        let t = Instant::now();
        bash(&up_script);
        bash(&down_script);
        shell.push(t.elapsed());
    }
    let (o, s) = (median(ours), median(shell));
    println!("lvslab up nat + down:            median {o:>8.1?} over {rounds} rounds");
    println!("lvslab plan nat | bash + --down: median {s:>8.1?} over {rounds} rounds");
    println!(
        "speed-up (shell / lvslab):       {:.2}x",
        s.as_secs_f64() / o.as_secs_f64()
    );
}
