//! `lvslab test nat --dataplane userspace --report DIR` end to end (root): the reports and
//! the trial's pcapng exist, report.json holds the trial with its packets, and tshark reads
//! every pcapng without a malformed frame. Skipped at collection when not root.

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};
use lvslab_harness::report::RunReport;

const BIN: &str = env!("CARGO_BIN_EXE_lvslab");

fn labs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../labs")
}

fn pcapng_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            pcapng_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "pcapng") {
            out.push(p);
        }
    }
}

fn nat_userspace_report() -> Result<(), Failed> {
    let dir = std::env::temp_dir().join(format!("lvslab-report-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(BIN)
        .arg("--labs")
        .arg(labs())
        .args(["test", "nat", "--dataplane", "userspace", "--report"])
        .arg(&dir)
        .output()
        .map_err(|e| format!("run {BIN}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let result = check(&dir, &stdout);
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        return Err(format!(
            "lvslab test exited {}:\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    result
}

fn check(dir: &Path, stdout: &str) -> Result<(), Failed> {
    for f in ["report.json", "junit.xml", "report.html"] {
        if !dir.join(f).is_file() {
            return Err(format!("{f} missing in {}:\n{stdout}", dir.display()).into());
        }
    }
    let capture = dir.join("nat/userspace/capture.pcapng");
    if !capture.is_file() {
        return Err(format!("{} missing:\n{stdout}", capture.display()).into());
    }
    let text = std::fs::read_to_string(dir.join("report.json"))?;
    let run = RunReport::from_json(&text)?;
    let t = run
        .trials
        .iter()
        .find(|t| t.name == "userspace::nat")
        .ok_or_else(|| format!("no userspace::nat trial in report.json:\n{text}"))?;
    if !t.passed() {
        return Err(format!("userspace::nat did not pass: {}", t.failure_text()).into());
    }
    let p = t
        .packets
        .as_ref()
        .ok_or_else(|| format!("userspace::nat reports no packets:\n{text}"))?;
    if p.packets == 0 || p.hops_checked == 0 || p.flows.is_empty() {
        return Err(format!(
            "userspace::nat reports {} packets, {} hops checked, {} flows",
            p.packets,
            p.hops_checked,
            p.flows.len()
        )
        .into());
    }
    if p.captures != [capture.display().to_string()] {
        return Err(format!("captures listed: {:?}", p.captures).into());
    }
    let junit = std::fs::read_to_string(dir.join("junit.xml"))?;
    if !junit.contains("userspace::nat") {
        return Err("junit.xml does not name userspace::nat".into());
    }
    let mut files = Vec::new();
    pcapng_files(dir, &mut files);
    for f in files {
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&f)
            .output()
            .map_err(|e| {
                format!("tshark is needed to read the captures (apt-get install tshark): {e}")
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "tshark -r {} exited {}: {}",
                f.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        if text.lines().count() as u64 != p.packets {
            return Err(format!(
                "tshark reads {} frames in {}, the report says {}",
                text.lines().count(),
                f.display(),
                p.packets
            )
            .into());
        }
        if let Some(l) = text.lines().find(|l| l.contains("Malformed")) {
            return Err(format!("tshark: malformed frame in {}: {l}", f.display()).into());
        }
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipping report::nat_userspace: needs root (network namespaces)");
    }
    let trials =
        vec![Trial::test("report::nat_userspace", nat_userspace_report).with_ignored_flag(!root)];
    libtest_mimic::run(&args, trials).exit();
}
