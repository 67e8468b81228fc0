//! Running a [`Command`] against any [`LoadBalancer`]: what ipvsadm would print and its
//! exit status, including libipvs' words for a refused request.

use lvslab_spec::lb::{LbError, LoadBalancer, ServiceConfig, ServiceKey};

use crate::command::{Command, ListTarget};
use crate::error::{Outcome, EXIT_FAILED, EXIT_LIST_FAILED, EXIT_USAGE};
use crate::help::{help_text, version_text};
use crate::listing::{self, ListingOptions};
use crate::parse::parse;

/// Parses `args` then executes the command against `lb`.
pub fn run(args: &[String], lb: &mut dyn LoadBalancer) -> Outcome {
    match parse(args) {
        Ok(cmd) => execute(&cmd, lb),
        Err(e) => Outcome::error(&e.message, e.exit_code),
    }
}

/// Executes a parsed command against `lb`.
pub fn execute(cmd: &Command, lb: &mut dyn LoadBalancer) -> Outcome {
    let done = |r: Result<(), LbError>, op: Op, lb: &mut dyn LoadBalancer| match r {
        Ok(()) => Outcome::ok(String::new()),
        Err(e) => Outcome::error(&dataplane_message(op, &e, lb), EXIT_FAILED),
    };
    match cmd {
        Command::Help => Outcome::ok(help_text()),
        Command::Version => Outcome::ok(version_text()),
        Command::AddService(svc) => {
            let r = lb.add_service(svc);
            done(r, Op::AddService, lb)
        }
        Command::EditService(svc) => {
            let svc = with_current_local_addresses(svc, lb);
            let r = lb.edit_service(&svc);
            done(r, Op::EditService, lb)
        }
        Command::DeleteService(key) => {
            let r = lb.delete_service(key);
            done(r, Op::DeleteService, lb)
        }
        Command::AddDest { service, dest } => {
            let r = lb.add_dest(service, dest);
            done(r, Op::AddDest, lb)
        }
        Command::EditDest { service, dest } => {
            let r = lb.edit_dest(service, dest);
            done(r, Op::EditDest(*service), lb)
        }
        Command::DeleteDest {
            service,
            addr,
            port,
        } => {
            let r = lb.delete_dest(service, *addr, *port);
            done(r, Op::DeleteDest(*service), lb)
        }
        Command::Flush => {
            let r = lb.flush();
            done(r, Op::Other, lb)
        }
        Command::Zero(key) => {
            let r = lb.zero(key.as_ref());
            done(r, Op::Zero, lb)
        }
        Command::SetTimeouts(t) => {
            let r = lb.set_timeouts(t);
            done(r, Op::Other, lb)
        }
        Command::List { target, options } => list(*target, options, lb),
    }
}

fn list(target: ListTarget, options: &ListingOptions, lb: &mut dyn LoadBalancer) -> Outcome {
    match target {
        ListTarget::Timeouts => match lb.timeouts() {
            Ok(t) => Outcome::ok(listing::render_timeouts(&t)),
            Err(e) => Outcome::error(&e.to_string(), EXIT_LIST_FAILED),
        },
        ListTarget::All => {
            // ipvsadm reads the version first (`ipvs_init`) and gives up when it cannot.
            let info = match lb.info() {
                Ok(i) => i,
                Err(e) => {
                    return Outcome::error(
                        &format!(
                            "Can't initialize ipvs: {e}\nAre you sure that IP Virtual Server \
                             is built in the kernel or as module?"
                        ),
                        EXIT_USAGE,
                    )
                }
            };
            match lb.list() {
                Ok(services) => Outcome::ok(listing::render(&info, &services, options)),
                Err(e) => Outcome::error(&dataplane_message(Op::List, &e, lb), EXIT_LIST_FAILED),
            }
        }
        ListTarget::Service(key) => match lb.list() {
            Ok(services) => match services.iter().find(|s| s.config.key == key) {
                Some(s) => Outcome::ok(listing::render_service(s, options)),
                None => Outcome::error("No such service", EXIT_LIST_FAILED),
            },
            Err(e) => Outcome::error(&dataplane_message(Op::List, &e, lb), EXIT_LIST_FAILED),
        },
    }
}

/// `-E` with `--laddr` adds to the pool; without, it keeps the pool the service has.
fn with_current_local_addresses(svc: &ServiceConfig, lb: &mut dyn LoadBalancer) -> ServiceConfig {
    let mut out = svc.clone();
    let current = lb
        .list()
        .ok()
        .and_then(|all| all.into_iter().find(|s| s.config.key == svc.key))
        .map(|s| s.config.local_addresses)
        .unwrap_or_default();
    if current.is_empty() {
        return out;
    }
    let mut pool = current;
    for a in &svc.local_addresses {
        if !pool.contains(a) {
            pool.push(*a);
        }
    }
    out.local_addresses = pool;
    out
}

/// The libipvs call a dataplane error came from; its messages depend on it.
#[derive(Debug, Clone, Copy)]
enum Op {
    AddService,
    EditService,
    DeleteService,
    Zero,
    AddDest,
    EditDest(ServiceKey),
    DeleteDest(ServiceKey),
    List,
    Other,
}

const EPERM: i32 = 1;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const ENOMEM: i32 = 12;
const EEXIST: i32 = 17;
const EINVAL: i32 = 22;
const ERANGE: i32 = 34;

/// libipvs' `ipvs_strerror`: the message ipvsadm prints for a refused request.
///
/// The model folds the kernel's ESRCH (no such service) and, for destination commands,
/// ENOENT (no such destination) into [`LbError::NotFound`]; which one it was is decided
/// by asking the dataplane whether the service exists.
fn dataplane_message(op: Op, err: &LbError, lb: &mut dyn LoadBalancer) -> String {
    let errno = match err {
        LbError::Exists(_) => EEXIST,
        LbError::NotFound(_) => match op {
            Op::EditDest(key) | Op::DeleteDest(key) if service_exists(lb, &key) => ENOENT,
            _ => ESRCH,
        },
        LbError::NoScheduler(_) => ENOENT,
        LbError::Invalid(_) => EINVAL,
        LbError::Range(_) => ERANGE,
        // Not errno-shaped: the dataplane's own words say more than a generic text.
        LbError::Unavailable(_) | LbError::Io { .. } => return err.to_string(),
    };
    let specific = match (op, errno) {
        (Op::AddService, EEXIST) => Some("Service already exists"),
        (Op::AddService | Op::EditService, ENOENT) => {
            Some("Scheduler or persistence engine not found")
        }
        (Op::EditService | Op::DeleteService | Op::Zero | Op::List, ESRCH) => {
            Some("No such service")
        }
        (Op::AddDest | Op::EditDest(_) | Op::DeleteDest(_), ESRCH) => Some("Service not defined"),
        (Op::AddDest, EEXIST) => Some("Destination already exists"),
        (Op::EditDest(_) | Op::DeleteDest(_), ENOENT) => Some("No such destination"),
        _ => None,
    };
    let text = specific.unwrap_or(match errno {
        EPERM => "Permission denied (you must be root)",
        EINVAL => "Invalid operation.  Possibly wrong module version, address not unicast, ...",
        ENOMEM => "Memory allocation problem",
        // strerror() for the rest.
        ENOENT => "No such file or directory",
        ESRCH => "No such process",
        EEXIST => "File exists",
        _ => "Numerical result out of range",
    });
    text.to_string()
}

fn service_exists(lb: &mut dyn LoadBalancer, key: &ServiceKey) -> bool {
    lb.list()
        .map(|all| all.iter().any(|s| s.config.key == *key))
        .unwrap_or(false)
}
