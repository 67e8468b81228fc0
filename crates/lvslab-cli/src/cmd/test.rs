//! `lvslab test`: the main job. Runs the same trials as `cargo test`, prints a summary
//! table and writes report.json, JUnit XML and a self-contained HTML report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use lvslab_harness::packets;
use lvslab_harness::report::{render_terminal, RunReport};
use lvslab_harness::{collect, run_trial, Status, TrialKind, TrialOutcome};
use lvslab_spec::Dataplane;

use super::require_root;

/// `YYYY-MM-DDTHH-MM-SS` (UTC), safe in file names.
fn run_id() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}-{:02}-{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A folder of this run's own under `root`: `<time>`, or `<time>-2`, `-3`… when another
/// run started in the same second (created, never reused).
fn fresh_run_dir(root: &Path) -> anyhow::Result<(String, PathBuf)> {
    std::fs::create_dir_all(root).with_context(|| format!("create {}", root.display()))?;
    let base = run_id();
    for n in 1..1000 {
        let run = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = root.join(&run);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok((run, dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
        }
    }
    anyhow::bail!("{}: 999 runs started in the same second?", root.display())
}

/// Which trials `lvslab test --dataplane` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DataplaneChoice {
    /// The userspace director's trials.
    Userspace,
    /// Kernel IPVS trials (in the VM when this kernel has no IPVS).
    Kernel,
    /// Every trial: topology, plan replay and both dataplanes.
    All,
}

impl DataplaneChoice {
    fn wants(self, kind: TrialKind) -> bool {
        match self {
            DataplaneChoice::All => true,
            DataplaneChoice::Userspace => kind == TrialKind::Dataplane(Dataplane::Userspace),
            DataplaneChoice::Kernel => kind == TrialKind::Dataplane(Dataplane::Kernel),
        }
    }
}

pub fn test(
    labs: &Path,
    only: &[String],
    dataplane: DataplaneChoice,
    report_dir: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    require_root("lvslab test")?;
    let (run, dir) = match report_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
            (run_id(), d.to_path_buf())
        }
        None => fresh_run_dir(Path::new("captures"))?,
    };
    // Captures go under the report directory: <report>/<lab>/<dataplane>/capture.pcapng.
    packets::set_capture_root(dir.clone());
    let specs: Vec<_> = collect(labs)
        .into_iter()
        .filter(|s| dataplane.wants(s.kind))
        .filter(|s| {
            only.is_empty()
                || only.iter().any(|o| {
                    s.lab_file
                        .parent()
                        .and_then(|p| p.file_name())
                        .is_some_and(|n| n == o.as_str())
                })
        })
        .collect();
    if specs.is_empty() {
        anyhow::bail!(
            "no trials match {only:?}: labs are the folders of {}",
            labs.display()
        );
    }
    let mut report = RunReport {
        run: run.clone(),
        trials: Vec::new(),
    };
    let mut failed = 0;
    for spec in &specs {
        if let Some(why) = &spec.skip {
            println!("ignored {}: {why}", spec.name);
            let mut t =
                TrialOutcome::new(&spec.name, &spec.lab_name(), spec.kind.name(), &spec.params);
            t.status = Status::Ignored {
                reason: why.clone(),
            };
            report.trials.push(t);
            continue;
        }
        let mut t = run_trial(spec, &|name| {
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            vec![
                exe,
                "--labs".into(),
                labs.display().to_string(),
                "trial".into(),
                name.into(),
            ]
        });
        let (packets, _) = t.packet_counts();
        println!(
            "{} {} ({:.1}s, {} checks){}",
            if t.passed() { "ok     " } else { "FAILED " },
            spec.name,
            t.duration_ms as f64 / 1000.0,
            t.checks,
            if packets > 0 {
                format!(", {packets} packets")
            } else {
                String::new()
            }
        );
        if !t.passed() {
            failed += 1;
            for l in &t.log {
                println!("    {l}");
            }
            for f in &t.failures {
                println!("    FAILED {}: {f}", f.check.name());
            }
        }
        let log_path = dir.join(format!(
            "{}.log",
            spec.name
                .replace("::", "-")
                .replace(['[', ']', '=', ','], "_")
        ));
        let mut log = t.log.join("\n") + "\n";
        for f in &t.failures {
            log.push_str(&format!("FAILED {}: {f}\n", f.check.name()));
        }
        std::fs::write(&log_path, log).with_context(|| format!("write {}", log_path.display()))?;
        t.log_file = Some(log_path.display().to_string());
        report.trials.push(t);
    }
    println!();
    print!("{}", render_terminal(&report));
    report
        .write_all(&dir)
        .with_context(|| format!("write the reports to {}", dir.display()))?;
    println!(
        "reports: {0}/report.json, {0}/junit.xml, {0}/report.html; captures under {0}/<lab>/<dataplane>/",
        dir.display()
    );
    let ignored = report.trials.len() - report.passed() - report.failed();
    if failed > 0 {
        println!("{failed} trial(s) failed");
        return Ok(ExitCode::FAILURE);
    }
    if ignored == report.trials.len() {
        println!("every trial was ignored: nothing was tested");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one trial by name (what a kernel trial runs inside the VM): the log on stdout, the
/// typed outcome in the trial's capture folder (where the host reads it), exit status 0
/// when it passed.
pub fn trial(labs: &Path, name: &str) -> anyhow::Result<ExitCode> {
    let spec = collect(labs)
        .into_iter()
        .find(|s| s.name == name)
        .with_context(|| format!("no trial named `{name}`"))?;
    let out = run_trial(&spec, &|_| Vec::new());
    for l in &out.log {
        println!("  {l}");
    }
    for f in &out.failures {
        println!("  FAILED {}: {f}", f.check.name());
    }
    Ok(if out.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
