//! The background process of an instance: runs the lab's servers in their namespaces
//! until `lvslab down` stops it (SIGTERM). The userspace director engine joins it here.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::Context;
use lvslab_netns::journal::Journal;
use lvslab_netns::traffic::start_server;
use lvslab_netns::Netns;

use super::lifecycle::READY_FILE;

pub fn run(instance: &str) -> anyhow::Result<ExitCode> {
    let journal = Journal::open(instance)?;
    let state = &journal.state;
    let lab = lvslab_spec::load_lab(&state.lab_file, &state.params)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .context("install the signal handler")?;
    let mut servers = Vec::new();
    for n in &lab.nodes {
        if n.servers.is_empty() {
            continue;
        }
        let rec = state
            .namespaces
            .iter()
            .find(|r| r.node == n.name)
            .with_context(|| format!("journal has no namespace for node {}", n.name))?;
        let ns = Netns::open(&rec.path)?;
        for s in &n.servers {
            servers.push(start_server(&ns, &n.name, s)?);
            println!("{}: {:?} server on port {}", n.name, s.kind, s.port);
        }
    }
    let ready: PathBuf = journal.dir().join(READY_FILE);
    std::fs::write(&ready, b"ready\n").with_context(|| format!("write {}", ready.display()))?;
    let _ = stop_rx.recv();
    drop(servers);
    Ok(ExitCode::SUCCESS)
}
