//! The background process of an instance (`lvslab daemon <instance>`, started by `up`):
//! runs the lab's servers and, with the userspace dataplane, the director engines and
//! tunnel endpoints, answers the control socket, and stops on SIGTERM/SIGINT (`down`).

use std::io::BufRead;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lvslab_netns::traffic::start_lab_servers;
use lvslab_spec::Dataplane;
use nix::sys::signal::{SigSet, Signal};

use crate::balancer::Balancer;
use crate::control::{ControlServer, Reply, Request};
use crate::{Instance, InstanceError, READY_FILE};

/// The line `up` writes on the daemon's stdin once the daemon's pid is in the journal.
pub const GO: &[u8] = b"go\n";

/// How long a control connection may take to send its request.
const CONTROL_READ_DEADLINE: Duration = Duration::from_secs(5);

/// Runs the daemon of `instance` until SIGTERM or SIGINT. Returns at once, doing nothing,
/// when its stdin closes before `up` says go (the `up` that started it died before
/// recording it, so nothing could ever stop it).
pub fn run(instance: &str) -> Result<(), InstanceError> {
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if line.as_bytes() != GO {
        return Ok(());
    }
    // Blocked before any thread starts, so every thread inherits the mask and the signals
    // wait for `sigwait` below instead of killing the process mid-teardown.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signals.add(s);
    }
    signals.thread_block().map_err(|e| InstanceError::Daemon {
        instance: instance.to_string(),
        detail: format!("block signals: {e}"),
    })?;

    let inst = Instance::open(instance)?;
    let lab = inst.lab().clone();
    let built = inst.attach()?;
    let servers = start_lab_servers(&lab, &built).map_err(|e| InstanceError::Daemon {
        instance: instance.to_string(),
        detail: format!("start the lab's servers: {e}"),
    })?;
    for s in &servers {
        println!("{}: {:?} server on port {}", s.node, s.kind, s.port);
    }
    // Kernel IPVS state lives in the director's namespace (`up` installed it); the
    // userspace director lives here.
    let balancer = match inst.dataplane() {
        Dataplane::Userspace if !lab.services.is_empty() => {
            let b = Balancer::install(&lab, &built, Dataplane::Userspace)?;
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
    let handler = {
        let balancer = balancer.clone();
        Arc::new(move |req: Request| answer(req, &balancer, default_director.as_deref()))
    };
    let control = ControlServer::start(
        inst.dir(),
        inst.state().owner_uid,
        CONTROL_READ_DEADLINE,
        handler,
    )?;
    write_ready(&inst)?;
    let _ = signals.wait();
    drop(control);
    if let Ok(mut b) = balancer.lock() {
        b.take();
    }
    drop(servers);
    Ok(())
}

fn write_ready(inst: &Instance) -> Result<(), InstanceError> {
    let path = inst.dir().join(READY_FILE);
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|f| f.set_permissions(std::fs::Permissions::from_mode(0o600)))
        .map_err(|source| InstanceError::Control { path, source })
}

fn answer(
    req: Request,
    balancer: &Mutex<Option<Balancer>>,
    default_director: Option<&str>,
) -> Reply {
    let mut guard = match balancer.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let Some(b) = guard.as_mut() else {
        return Reply::failure("this instance runs no userspace director");
    };
    let (director, args) = match req {
        Request::Stats => {
            return Reply {
                stdout: b.stats_text(),
                stderr: String::new(),
                exit_code: 0,
            }
        }
        Request::Ipvsadm { director, args } => (director, args),
    };
    let Some(director) = director.as_deref().or(default_director) else {
        return Reply::failure("this lab has no director");
    };
    let Some(o) = b.with_lb(director, |lb| lvslab_ipvsadm::run(&args, lb)) else {
        return Reply::failure(format!("no director `{director}` in this instance"));
    };
    // A change is in force on the packet path (nft rules included) once the engine has
    // re-read its services: answer then, so the first packet a user sends after
    // `ipvsadm -A/-a` is already the engine's.
    use lvslab_ipvsadm::{parse, Command};
    let changes = matches!(parse(&args), Ok(c) if !matches!(c, Command::List { .. } | Command::Help | Command::Version));
    if changes && o.exit_code == 0 {
        b.settle();
    }
    Reply {
        stdout: o.stdout,
        stderr: o.stderr,
        exit_code: o.exit_code,
    }
}
