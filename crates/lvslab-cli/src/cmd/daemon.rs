//! The background process of an instance: runs the lab's servers and, with the userspace
//! dataplane, the director engine and tunnel endpoints, until `lvslab down` stops it
//! (SIGTERM). `lvslab ipvsadm` reaches its directors over `control.sock`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use indexmap::IndexMap;
use lvslab_harness::balancer::{Balancer, Dataplane};
use lvslab_netns::apply::LabInstance;
use lvslab_netns::journal::Journal;
use lvslab_netns::plan::{plan, DecapImpl, PlanOptions};
use lvslab_netns::traffic::start_lab_servers;
use lvslab_netns::Netns;
use serde::{Deserialize, Serialize};

use super::lifecycle::READY_FILE;

/// Name of the control socket in the instance's folder.
pub const CONTROL_SOCKET: &str = "control.sock";

/// One request on the control socket (a JSON line).
#[derive(Debug, Serialize, Deserialize)]
pub struct ControlRequest {
    /// Director node; the lab's first director when absent.
    pub director: Option<String>,
    /// ipvsadm arguments.
    pub ipvsadm: Vec<String>,
}

/// The answer (a JSON line).
#[derive(Debug, Serialize, Deserialize)]
pub struct ControlReply {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

/// Sends one request to a running instance's daemon.
pub fn control(dir: &Path, req: &ControlRequest) -> anyhow::Result<ControlReply> {
    let path = dir.join(CONTROL_SOCKET);
    let mut s = UnixStream::connect(&path).with_context(|| {
        format!(
            "connect to {} (is the instance's daemon running? see `lvslab status`)",
            path.display()
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    serde_json::to_writer(&mut s, req)?;
    s.write_all(b"\n")?;
    let mut line = String::new();
    BufReader::new(s)
        .read_line(&mut line)
        .context("read the daemon's answer")?;
    serde_json::from_str(&line).context("parse the daemon's answer")
}

pub fn run(instance: &str) -> anyhow::Result<ExitCode> {
    let journal = Journal::open(instance)?;
    let state = &journal.state;
    let lab = lvslab_spec::load_lab(&state.lab_file, &state.params)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let dataplane = if state.dataplane == "kernel" {
        Dataplane::Kernel
    } else {
        Dataplane::Userspace
    };
    let decap = match dataplane {
        Dataplane::Kernel => DecapImpl::Kernel,
        Dataplane::Userspace => DecapImpl::Userspace,
    };
    let p = plan(
        &lab,
        &PlanOptions {
            instance: instance.to_string(),
            decap,
            run: None,
        },
    );
    let mut namespaces = IndexMap::new();
    for rec in &state.namespaces {
        namespaces.insert(rec.node.clone(), Netns::open(&rec.path)?);
    }
    let inst = LabInstance::attach(p, namespaces);

    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    ctrlc::set_handler(move || {
        let _ = stop_tx.send(());
    })
    .context("install the signal handler")?;

    let servers = start_lab_servers(&lab, &inst)?;
    for s in &servers {
        println!("{}: {:?} server on port {}", s.node, s.kind, s.port);
    }
    // Kernel IPVS state lives in the director's namespace (`up` installed it); the
    // userspace director lives here.
    let balancer = match dataplane {
        Dataplane::Userspace if !lab.services.is_empty() => {
            let b = Balancer::install(&lab, &inst, Dataplane::Userspace)?;
            println!(
                "userspace director running for {} service(s)",
                lab.services.len()
            );
            Some(b)
        }
        _ => None,
    };
    let balancer = Arc::new(Mutex::new(balancer));
    let default_director = lab.services.first().map(|s| s.director.clone());

    let sock_path: PathBuf = journal.dir().join(CONTROL_SOCKET);
    let _ = std::fs::remove_file(&sock_path);
    let listener = UnixListener::bind(&sock_path)
        .with_context(|| format!("listen on {}", sock_path.display()))?;
    listener.set_nonblocking(true)?;
    let stopping = Arc::new(AtomicBool::new(false));
    let control_thread = {
        let (balancer, stopping, default_director) =
            (balancer.clone(), stopping.clone(), default_director.clone());
        std::thread::spawn(move || {
            serve_control(&listener, &balancer, default_director.as_deref(), &stopping)
        })
    };

    let ready: PathBuf = journal.dir().join(READY_FILE);
    std::fs::write(&ready, b"ready\n").with_context(|| format!("write {}", ready.display()))?;
    let _ = stop_rx.recv();
    stopping.store(true, Ordering::Relaxed);
    let _ = control_thread.join();
    drop(balancer);
    drop(servers);
    Ok(ExitCode::SUCCESS)
}

fn serve_control(
    listener: &UnixListener,
    balancer: &Mutex<Option<Balancer>>,
    default_director: Option<&str>,
    stopping: &AtomicBool,
) {
    while !stopping.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, _)) => {
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let reply = answer(&conn, balancer, default_director);
                let mut w = &conn;
                let _ = serde_json::to_writer(&mut w, &reply);
                let _ = w.write_all(b"\n");
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn answer(
    conn: &UnixStream,
    balancer: &Mutex<Option<Balancer>>,
    default_director: Option<&str>,
) -> ControlReply {
    let fail = |m: String| ControlReply {
        stdout: String::new(),
        stderr: m + "\n",
        exit_code: 1,
    };
    let mut line = String::new();
    if let Err(e) = BufReader::new(conn).read_line(&mut line) {
        return fail(format!("read request: {e}"));
    }
    let req: ControlRequest = match serde_json::from_str(&line) {
        Ok(r) => r,
        Err(e) => return fail(format!("bad request: {e}")),
    };
    let Some(director) = req.director.as_deref().or(default_director) else {
        return fail("this lab has no director".into());
    };
    let mut guard = match balancer.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let Some(b) = guard.as_mut() else {
        return fail("this instance runs no userspace director".into());
    };
    let reply = match b.with_lb(director, |lb| lvslab_ipvsadm::run(&req.ipvsadm, lb)) {
        Some(o) => ControlReply {
            stdout: o.stdout,
            stderr: o.stderr,
            exit_code: o.exit_code,
        },
        None => return fail(format!("no director `{director}` in this instance")),
    };
    // A change is in force on the packet path (nft rules included) once the engine has
    // re-read its services: answer then, so the first packet a user sends after
    // `ipvsadm -A/-a` is already the engine's.
    use lvslab_ipvsadm::{parse, Command};
    let changes = matches!(parse(&req.ipvsadm), Ok(c) if !matches!(c, Command::List { .. } | Command::Help | Command::Version));
    if changes && reply.exit_code == 0 {
        b.settle();
    }
    drop(guard);
    reply
}
