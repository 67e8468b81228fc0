//! The control socket of an instance's daemon: `lvslab ipvsadm` (and `lvslab stats`) reach
//! the userspace director through it.
//!
//! One JSON line each way. The socket is `control.sock` in the instance's 0700 folder and
//! is itself 0600; the server also checks each peer's credentials (root or the user who ran
//! `up`). Every connection is served on a thread of its own with a read deadline, so a
//! client that connects and sends nothing delays nobody else.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::InstanceError;

/// Name of the control socket in the instance's folder.
pub const CONTROL_SOCKET: &str = "control.sock";
/// Longest request line accepted.
const MAX_REQUEST: u64 = 64 * 1024;
/// Connections served at once; more are closed at once (each holds a thread).
const MAX_CONNECTIONS: usize = 32;

/// One request (a JSON line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// ipvsadm arguments against a director (the lab's first when absent).
    Ipvsadm {
        director: Option<String>,
        args: Vec<String>,
    },
    /// The userspace engines' counters, drops by reason included.
    Stats,
}

/// The answer (a JSON line): what the command printed and its exit status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
}

impl Reply {
    pub fn failure(message: impl Into<String>) -> Reply {
        let mut stderr = message.into();
        stderr.push('\n');
        Reply {
            stdout: String::new(),
            stderr,
            exit_code: 1,
        }
    }
}

/// Who may use the socket: root, and the user who started the instance.
pub fn peer_allowed(peer_uid: u32, owner_uid: u32) -> bool {
    peer_uid == 0 || peer_uid == owner_uid
}

/// Sends one request to the daemon whose folder is `dir` and waits for its answer.
pub fn send(dir: &Path, req: &Request, timeout: Duration) -> Result<Reply, InstanceError> {
    let path = dir.join(CONTROL_SOCKET);
    let err = |source| InstanceError::Control {
        path: path.clone(),
        source,
    };
    let mut s = UnixStream::connect(&path).map_err(err)?;
    s.set_read_timeout(Some(timeout)).map_err(err)?;
    s.set_write_timeout(Some(timeout)).map_err(err)?;
    let mut line = serde_json::to_vec(req).map_err(|e| err(e.into()))?;
    line.push(b'\n');
    s.write_all(&line).map_err(err)?;
    let mut answer = String::new();
    BufReader::new(s.take(16 * 1024 * 1024))
        .read_line(&mut answer)
        .map_err(err)?;
    serde_json::from_str(&answer).map_err(|e| err(e.into()))
}

/// What answers requests (runs on the connection's thread).
pub type Handler = Arc<dyn Fn(Request) -> Reply + Send + Sync>;

/// A listening control socket; dropping it stops accepting and joins the acceptor.
pub struct ControlServer {
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    pub path: PathBuf,
}

impl ControlServer {
    /// Listens on `control.sock` in `dir` (an existing stale socket file there is
    /// replaced: the folder is the instance's own), serving peers that [`peer_allowed`]
    /// admits. `read_deadline` bounds how long a connection may take to send its request.
    pub fn start(
        dir: &Path,
        owner_uid: u32,
        read_deadline: Duration,
        handler: Handler,
    ) -> Result<ControlServer, InstanceError> {
        let path = dir.join(CONTROL_SOCKET);
        let err = |source| InstanceError::Control {
            path: path.clone(),
            source,
        };
        match std::fs::symlink_metadata(&path) {
            Ok(m) if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) => {
                std::fs::remove_file(&path).map_err(err)?
            }
            _ => {}
        }
        let listener = UnixListener::bind(&path).map_err(err)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        listener.set_nonblocking(true).map_err(err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("control accept".into())
                .spawn(move || accept_loop(&listener, owner_uid, read_deadline, &handler, &stop))
                .map_err(err)?
        };
        Ok(ControlServer {
            stop,
            acceptor: Some(acceptor),
            path,
        })
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

fn accept_loop(
    listener: &UnixListener,
    owner_uid: u32,
    read_deadline: Duration,
    handler: &Handler,
    stop: &AtomicBool,
) {
    let busy = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        let conn = match listener.accept() {
            Ok((conn, _)) => conn,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => {
                tracing::warn!("control socket: accept: {e}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let uid = nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials)
            .map(|c| c.uid());
        match uid {
            Ok(uid) if peer_allowed(uid, owner_uid) => {}
            Ok(uid) => {
                refuse(
                    conn,
                    &format!(
                        "uid {uid} may not control this instance (root or uid {owner_uid} may)"
                    ),
                );
                continue;
            }
            Err(e) => {
                refuse(conn, &format!("cannot read the peer's credentials: {e}"));
                continue;
            }
        }
        if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            busy.fetch_sub(1, Ordering::AcqRel);
            refuse(conn, "too many control connections at once; try again");
            continue;
        }
        let (handler, busy) = (handler.clone(), busy.clone());
        let spawned = std::thread::Builder::new()
            .name("control conn".into())
            .spawn(move || {
                serve_one(conn, read_deadline, &handler);
                busy.fetch_sub(1, Ordering::AcqRel);
            });
        if let Err(e) = spawned {
            tracing::warn!("control socket: no thread for a connection: {e}");
        }
    }
}

fn refuse(conn: UnixStream, why: &str) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_write_timeout(Some(Duration::from_secs(1)));
    write_reply(&conn, &Reply::failure(why));
}

fn write_reply(mut conn: &UnixStream, reply: &Reply) {
    if let Ok(mut line) = serde_json::to_vec(reply) {
        line.push(b'\n');
        let _ = conn.write_all(&line);
    }
}

fn serve_one(conn: UnixStream, read_deadline: Duration, handler: &Handler) {
    let _ = conn.set_nonblocking(false);
    let _ = conn.set_read_timeout(Some(read_deadline));
    let _ = conn.set_write_timeout(Some(Duration::from_secs(10)));
    let mut line = String::new();
    let read = BufReader::new((&conn).take(MAX_REQUEST)).read_line(&mut line);
    let reply = match read {
        Err(e) => Reply::failure(format!("read request: {e}")),
        Ok(_) if !line.ends_with('\n') => Reply::failure(format!(
            "the request must be one JSON line of at most {MAX_REQUEST} bytes"
        )),
        Ok(_) => match serde_json::from_str::<Request>(&line) {
            Ok(req) => handler(req),
            Err(e) => Reply::failure(format!("bad request: {e}")),
        },
    };
    write_reply(&conn, &reply);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lvslab-control-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    fn echo_handler() -> Handler {
        Arc::new(|req| match req {
            Request::Ipvsadm { args, .. } => Reply {
                stdout: args.join(" "),
                stderr: String::new(),
                exit_code: 0,
            },
            Request::Stats => Reply::failure("no stats here"),
        })
    }

    #[test]
    fn only_root_and_the_owner_are_served() {
        assert!(peer_allowed(0, 1000));
        assert!(peer_allowed(1000, 1000));
        assert!(!peer_allowed(1001, 1000));
        assert!(peer_allowed(0, 0));
        assert!(!peer_allowed(65534, 0));
    }

    #[test]
    fn a_silent_client_does_not_hold_up_the_next_one() {
        let dir = temp_dir("silent");
        let me = nix::unistd::geteuid().as_raw();
        // A deadline far longer than the client waits: served one at a time, the second
        // request could only be answered after the silent one gave up, i.e. never here.
        let server = ControlServer::start(&dir, me, Duration::from_secs(3600), echo_handler())
            .expect("start");
        let silent = UnixStream::connect(dir.join(CONTROL_SOCKET)).expect("connect");
        let reply = send(
            &dir,
            &Request::Ipvsadm {
                director: None,
                args: vec!["-L".into(), "-n".into()],
            },
            Duration::from_secs(30),
        )
        .expect("the second client is answered");
        assert_eq!(reply.stdout, "-L -n");
        drop(silent);
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_socket_is_private_and_bad_requests_get_an_answer() {
        let dir = temp_dir("mode");
        // bind() gives 0777 minus the umask (0755 under the usual 022): the mode checked
        // below is the server's own doing.
        let server = ControlServer::start(
            &dir,
            nix::unistd::geteuid().as_raw(),
            Duration::from_secs(5),
            echo_handler(),
        )
        .expect("start");
        let mode = std::fs::metadata(&server.path)
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        let mut s = UnixStream::connect(&server.path).expect("connect");
        s.write_all(b"{\"op\":\"reboot\"}\n").expect("write");
        let mut answer = String::new();
        BufReader::new(&s).read_line(&mut answer).expect("read");
        let reply: Reply = serde_json::from_str(&answer).expect("a reply");
        assert_eq!(reply.exit_code, 1);
        assert!(reply.stderr.contains("bad request"), "{}", reply.stderr);
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
