//! The lab's own servers and probes, each socket created inside a node's namespace.
//!
//! Servers: `http` answers every request with the node's name (so a client can tell which
//! real server answered), `tcp-echo` and `udp-echo` send back what they get. Probes:
//! ICMP echo over a raw socket, TCP connect, and a one-shot HTTP GET. Everything is
//! bounded by timeouts and stops by itself.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use lvslab_spec::model::{Server, ServerKind};

use crate::ns::Netns;

/// Traffic errors, naming the node and the peer.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    #[error("{node}: {op} {peer}: {source}")]
    Io {
        node: String,
        op: &'static str,
        peer: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{node}: {source}")]
    Netns {
        node: String,
        #[source]
        source: Box<crate::error::Error>,
    },
    #[error("{node}: {op} {peer}: {detail}")]
    Protocol {
        node: String,
        op: &'static str,
        peer: String,
        detail: String,
    },
}

fn in_ns<T: Send>(ns: &Netns, node: &str, f: impl FnOnce() -> T + Send) -> Result<T, TrafficError> {
    ns.run(f).map_err(|source| TrafficError::Netns {
        node: node.into(),
        source: Box::new(source),
    })
}

/// A running server; stops (and joins its thread) on drop.
#[derive(Debug)]
pub struct ServerHandle {
    pub node: String,
    pub kind: ServerKind,
    pub port: u16,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// Requests (TCP) or datagrams (UDP) answered so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How often a server looks at its stop flag.
const POLL: Duration = Duration::from_millis(50);
/// How long a server waits for a request on an accepted connection.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Starts one of a node's declared servers in its namespace.
pub fn start_server(ns: &Netns, node: &str, server: &Server) -> Result<ServerHandle, TrafficError> {
    let bind = SocketAddr::new(
        server.bind.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        server.port,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let io_err = |op, source| TrafficError::Io {
        node: node.into(),
        op,
        peer: bind.to_string(),
        source,
    };
    let thread = match server.kind {
        ServerKind::Http | ServerKind::TcpEcho => {
            let listener =
                in_ns(ns, node, || TcpListener::bind(bind))?.map_err(|e| io_err("listen on", e))?;
            listener
                .set_nonblocking(true)
                .map_err(|e| io_err("listen on", e))?;
            let (stop, served, name, kind) =
                (stop.clone(), served.clone(), node.to_string(), server.kind);
            std::thread::Builder::new()
                .name(format!("{node} {:?} :{}", server.kind, server.port))
                .spawn(move || serve_tcp(listener, kind, &name, &stop, &served))
                .map_err(|e| io_err("start server thread for", e))?
        }
        ServerKind::UdpEcho => {
            let sock = in_ns(ns, node, || UdpSocket::bind(bind))?.map_err(|e| io_err("bind", e))?;
            sock.set_read_timeout(Some(POLL))
                .map_err(|e| io_err("bind", e))?;
            let (stop, served) = (stop.clone(), served.clone());
            // The answer is `<node> <datagram>`: the sender learns which real server
            // answered, as the HTTP server's body tells it for TCP.
            let prefix = format!("{node} ").into_bytes();
            std::thread::Builder::new()
                .name(format!("{node} udp-echo :{}", server.port))
                .spawn(move || {
                    let mut buf = [0u8; 2048];
                    let mut out = Vec::with_capacity(2048 + prefix.len());
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok((n, peer)) = sock.recv_from(&mut buf) {
                            out.clear();
                            out.extend_from_slice(&prefix);
                            out.extend_from_slice(&buf[..n]);
                            if sock.send_to(&out, peer).is_ok() {
                                served.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
                .map_err(|e| io_err("start server thread for", e))?
        }
    };
    Ok(ServerHandle {
        node: node.into(),
        kind: server.kind,
        port: server.port,
        stop,
        served,
        thread: Some(thread),
    })
}

fn serve_tcp(
    listener: TcpListener,
    kind: ServerKind,
    node: &str,
    stop: &AtomicBool,
    served: &AtomicU64,
) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((mut conn, _)) => {
                // One connection at a time keeps the server bounded; lab requests are tiny.
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(REQUEST_TIMEOUT));
                let _ = conn.set_write_timeout(Some(REQUEST_TIMEOUT));
                let ok = match kind {
                    ServerKind::Http => answer_http(&mut conn, node),
                    _ => echo_once(&mut conn),
                };
                if ok {
                    served.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

fn answer_http(conn: &mut TcpStream, node: &str) -> bool {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") && req.len() < 16 * 1024 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let body = format!("{node}\n");
    let resp = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(resp.as_bytes()).is_ok()
}

fn echo_once(conn: &mut TcpStream) -> bool {
    let mut buf = [0u8; 2048];
    match conn.read(&mut buf) {
        Ok(n) if n > 0 => conn.write_all(&buf[..n]).is_ok(),
        _ => false,
    }
}

/// Opens a TCP connection from inside `ns`; the socket is created there and used here.
pub fn tcp_connect(
    ns: &Netns,
    node: &str,
    to: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, TrafficError> {
    let s = in_ns(ns, node, || TcpStream::connect_timeout(&to, timeout))?.map_err(|source| {
        TrafficError::Io {
            node: node.into(),
            op: "connect to",
            peer: to.to_string(),
            source,
        }
    })?;
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    Ok(s)
}

/// Like [`tcp_connect`], from a chosen source port: a load balancer keys connections on
/// the client's port, and an ephemeral port the kernel hands out again within two minutes
/// meets the old connection's entry (a DR director keeps closed ones in FIN_WAIT).
pub fn tcp_connect_from(
    ns: &Netns,
    node: &str,
    source_port: u16,
    to: SocketAddr,
    timeout: Duration,
) -> Result<TcpStream, TrafficError> {
    let s = in_ns(ns, node, || connect_bound(source_port, to, timeout))?.map_err(|source| {
        TrafficError::Io {
            node: node.into(),
            op: "connect (from a chosen port) to",
            peer: to.to_string(),
            source,
        }
    })?;
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    Ok(s)
}

fn connect_bound(
    source_port: u16,
    to: SocketAddr,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::socket::{
        bind, connect, getsockopt, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockType,
        SockaddrIn,
    };
    use std::os::fd::{AsFd, AsRawFd};
    let SocketAddr::V4(to4) = to else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "IPv6 is not supported",
        ));
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    bind(fd.as_raw_fd(), &SockaddrIn::new(0, 0, 0, 0, source_port))?;
    match connect(fd.as_raw_fd(), &SockaddrIn::from(to4)) {
        Ok(()) => {}
        Err(nix::errno::Errno::EINPROGRESS) => {
            let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
            if poll(&mut fds, PollTimeout::from(ms))? == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
            }
            let err = getsockopt(&fd, sockopt::SocketError)?;
            if err != 0 {
                return Err(std::io::Error::from_raw_os_error(err));
            }
        }
        Err(e) => return Err(e.into()),
    }
    let s = TcpStream::from(fd);
    s.set_nonblocking(false)?;
    Ok(s)
}

/// `GET /` from `node` to `to`; returns the body (the answering node's name for `http`
/// servers), trimmed.
pub fn http_get(
    ns: &Netns,
    node: &str,
    to: SocketAddr,
    timeout: Duration,
) -> Result<String, TrafficError> {
    http_get_from(ns, node, None, to, timeout)
}

/// [`http_get`] from a chosen source port, or an ephemeral one.
pub fn http_get_from(
    ns: &Netns,
    node: &str,
    source_port: Option<u16>,
    to: SocketAddr,
    timeout: Duration,
) -> Result<String, TrafficError> {
    let mut s = match source_port {
        Some(p) => tcp_connect_from(ns, node, p, to, timeout)?,
        None => tcp_connect(ns, node, to, timeout)?,
    };
    let err = |op, source| TrafficError::Io {
        node: node.into(),
        op,
        peer: to.to_string(),
        source,
    };
    s.write_all(
        format!(
            "GET / HTTP/1.0\r\nHost: {}\r\nUser-Agent: lvslab\r\n\r\n",
            to.ip()
        )
        .as_bytes(),
    )
    .map_err(|e| err("send request to", e))?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)
        .map_err(|e| err("read answer from", e))?;
    let text = String::from_utf8_lossy(&resp);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Err(TrafficError::Protocol {
            node: node.into(),
            op: "read answer from",
            peer: to.to_string(),
            detail: format!(
                "not an HTTP answer: {:?}",
                text.chars().take(80).collect::<String>()
            ),
        });
    };
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(TrafficError::Protocol {
            node: node.into(),
            op: "GET",
            peer: to.to_string(),
            detail: head.lines().next().unwrap_or("").to_string(),
        });
    }
    Ok(body.trim().to_string())
}

/// Sends one datagram from a fresh socket of `node` (a new source port, so a new
/// connection for the load balancer) and returns the answering node's name from the
/// `udp-echo` server's `<node> <datagram>` answer.
pub fn udp_ask(
    ns: &Netns,
    node: &str,
    to: SocketAddr,
    seq: u64,
    timeout: Duration,
) -> Result<String, TrafficError> {
    let err = |op, source| TrafficError::Io {
        node: node.into(),
        op,
        peer: to.to_string(),
        source,
    };
    let sock = in_ns(ns, node, || {
        UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))
    })?
    .map_err(|e| err("bind for", e))?;
    sock.set_read_timeout(Some(timeout))
        .map_err(|e| err("send to", e))?;
    let msg = format!("lvslab-{seq}");
    sock.send_to(msg.as_bytes(), to)
        .map_err(|e| err("send to", e))?;
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + timeout;
    loop {
        let (n, from) = sock
            .recv_from(&mut buf)
            .map_err(|e| err("receive from", e))?;
        let text = String::from_utf8_lossy(&buf[..n]);
        if from == to {
            if let Some((who, rest)) = text.split_once(' ') {
                if rest == msg {
                    return Ok(who.to_string());
                }
            }
        }
        if Instant::now() > deadline {
            return Err(TrafficError::Protocol {
                node: node.into(),
                op: "udp",
                peer: to.to_string(),
                detail: format!("no answer to {msg} within {timeout:?}"),
            });
        }
    }
}

/// Sends one ICMP echo request from `node` to `to` and waits for the matching reply.
/// Returns the round-trip time.
pub fn ping(
    ns: &Netns,
    node: &str,
    to: Ipv4Addr,
    timeout: Duration,
) -> Result<Duration, TrafficError> {
    use nix::sys::socket::{
        recvfrom, sendto, socket, AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType,
        SockaddrIn,
    };
    let err = |op, e: nix::Error| TrafficError::Io {
        node: node.into(),
        op,
        peer: to.to_string(),
        source: std::io::Error::from(e),
    };
    let fd = in_ns(ns, node, || {
        socket(
            AddressFamily::Inet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::Icmp,
        )
    })?
    .map_err(|e| err("open ICMP socket for", e))?;
    let ident = (std::process::id() as u16) ^ 0x4c56; // "LV"
    let seq: u16 = 1;
    let mut pkt = [0u8; 16];
    pkt[0] = 8; // echo request
    pkt[4..6].copy_from_slice(&ident.to_be_bytes());
    pkt[6..8].copy_from_slice(&seq.to_be_bytes());
    pkt[8..16].copy_from_slice(b"lvslab!!");
    let c = inet_checksum(&pkt);
    pkt[2..4].copy_from_slice(&c.to_be_bytes());
    let dest = SockaddrIn::from(std::net::SocketAddrV4::new(to, 0));
    let start = Instant::now();
    sendto(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &pkt,
        &dest,
        MsgFlags::empty(),
    )
    .map_err(|e| err("send echo request to", e))?;
    let mut buf = [0u8; 1500];
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(TrafficError::Protocol {
                node: node.into(),
                op: "ping",
                peer: to.to_string(),
                detail: format!("no echo reply within {timeout:?}"),
            });
        }
        let tv = nix::sys::time::TimeVal::new(left.as_secs() as i64, left.subsec_micros() as i64);
        nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::ReceiveTimeout, &tv)
            .map_err(|e| err("ping", e))?;
        match recvfrom::<SockaddrIn>(std::os::fd::AsRawFd::as_raw_fd(&fd), &mut buf) {
            Ok((n, Some(from))) => {
                // A raw ICMP socket returns the IP header too.
                let ihl = usize::from(buf[0] & 0x0f) * 4;
                if from.ip() == to
                    && n >= ihl + 8
                    && buf[ihl] == 0
                    && buf[ihl + 4..ihl + 6] == ident.to_be_bytes()
                    && buf[ihl + 6..ihl + 8] == seq.to_be_bytes()
                {
                    return Ok(start.elapsed());
                }
                if from.ip() != to && n >= ihl + 8 && buf[ihl] == 3 {
                    // Destination unreachable from a router on the way.
                    return Err(TrafficError::Protocol {
                        node: node.into(),
                        op: "ping",
                        peer: to.to_string(),
                        detail: format!(
                            "{} answered: destination unreachable (code {})",
                            from.ip(),
                            buf[ihl + 1]
                        ),
                    });
                }
            }
            Ok(_) => {}
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {}
            Err(e) => return Err(err("ping", e)),
        }
    }
}

/// Starts every server the lab declares, each in its node's namespace; they stop when
/// the handles are dropped.
pub fn start_lab_servers(
    lab: &lvslab_spec::model::Lab,
    inst: &crate::apply::LabInstance,
) -> Result<Vec<ServerHandle>, TrafficError> {
    let mut servers = Vec::new();
    for n in &lab.nodes {
        let Some(ns) = inst.ns(&n.name) else { continue };
        for s in &n.servers {
            servers.push(start_server(ns, &n.name, s)?);
        }
    }
    Ok(servers)
}

/// RFC 1071 Internet checksum.
fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = u16::from_be_bytes([chunk[0], *chunk.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
