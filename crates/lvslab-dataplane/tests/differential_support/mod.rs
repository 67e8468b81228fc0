//! Both sides of the differential scheduling test: kernel IPVS in a namespace of the
//! lvslab-vm guest, fed real packets through a TUN device, and the userspace
//! [`Director`], fed the same packets as [`FlowKey`]s.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use etherparse::PacketBuilder;
use lvslab_dataplane::conn::TcpFlags;
use lvslab_dataplane::director::{Director, DirectorConfig, FlowKey, Verdict};
use lvslab_ipvs::IpvsClient;
use lvslab_netns::Netns;
use lvslab_spec::lb::{DestConfig, LoadBalancer, Protocol, ServiceConfig, ServiceKey};

/// One connection's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    pub protocol: Protocol,
    pub client: Ipv4Addr,
    pub sport: u16,
    pub vip: Ipv4Addr,
    pub vport: u16,
}

/// What happens next, on both sides alike.
#[derive(Debug, Clone)]
pub enum Step {
    AddService(ServiceConfig),
    EditService(ServiceConfig),
    AddDest(ServiceKey, DestConfig),
    EditDest(ServiceKey, DestConfig),
    DeleteDest(ServiceKey, IpAddr, u16),
    /// A new connection (TCP SYN or a UDP datagram): records which server was picked.
    Open(Flow),
    /// A TCP segment with these flags on an existing connection.
    Segment(Flow, u8),
}

/// A server a scheduler picked (`None`: no server, the packet was not scheduled).
pub type Pick = Option<(IpAddr, u16)>;

/// A kernel connection entry's identity: client address and port, virtual address and port.
type ConnKey = (IpAddr, u16, IpAddr, u16);
/// Where the kernel sent that connection, and its state name.
type ConnTarget = (IpAddr, u16, String);

/// Per-destination counters both sides report, in list order.
type Counters = Vec<(ServiceKey, IpAddr, u16, u32, u32, u32)>;

fn counters(list: Vec<lvslab_spec::lb::ServiceStatus>) -> Counters {
    let mut out = Vec::new();
    let mut list = list;
    list.sort_by_key(|s| s.config.key);
    for s in list {
        for d in s.dests {
            out.push((
                s.config.key,
                d.config.addr,
                d.config.port,
                d.config.weight,
                d.active_conns,
                d.inactive_conns,
            ));
        }
    }
    out
}

/// Kernel IPVS in a fresh namespace: VIPs on `lo`, everything else routed into `tun0`,
/// whose other end is ours (packets we write arrive as if from the wire).
pub struct Kernel {
    ns: Netns,
    ipvs: IpvsClient,
    tun: File,
    conns: File,
}

impl Kernel {
    /// Builds the namespace with the given VIPs.
    pub fn new(vips: &[Ipv4Addr]) -> Result<Kernel, String> {
        let ns = Netns::new_anonymous().map_err(|e| format!("new namespace: {e}"))?;
        let tun = lvslab_netns::tun::open_tun(&ns, "tun0").map_err(|e| e.to_string())?;
        let h = ns.netlink().map_err(|e| e.to_string())?;
        h.set_up("tun0").map_err(|e| e.to_string())?;
        for vip in vips {
            h.add_address("lo", IpAddr::V4(*vip), 32)
                .map_err(|e| e.to_string())?;
        }
        h.add_route(None, None, Some("tun0"))
            .map_err(|e| e.to_string())?;
        let ipvs = ns
            .run(IpvsClient::connect)
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("IPVS connect: {e}"))?;
        // A /proc/net file opened from inside the namespace keeps showing that namespace.
        let conns = ns
            .run(|| File::open("/proc/thread-self/net/ip_vs_conn"))
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("open ip_vs_conn: {e}"))?;
        Ok(Kernel {
            ns,
            ipvs,
            tun,
            conns,
        })
    }

    fn send(&mut self, flow: &Flow, flags: u8) -> Result<(), String> {
        let ip = PacketBuilder::ipv4(flow.client.octets(), flow.vip.octets(), 64);
        let mut bytes = Vec::new();
        let written = match flow.protocol {
            Protocol::Udp => ip.udp(flow.sport, flow.vport).write(&mut bytes, b"lvslab"),
            _ => {
                let mut tcp = ip.tcp(flow.sport, flow.vport, 1000, 65535);
                if flags & TcpFlags::SYN != 0 {
                    tcp = tcp.syn();
                }
                if flags & TcpFlags::ACK != 0 {
                    tcp = tcp.ack(1);
                }
                if flags & TcpFlags::FIN != 0 {
                    tcp = tcp.fin();
                }
                if flags & TcpFlags::RST != 0 {
                    tcp = tcp.rst();
                }
                tcp.write(&mut bytes, &[])
            }
        };
        written.map_err(|e| format!("build packet: {e}"))?;
        self.tun
            .write_all(&bytes)
            .map_err(|e| format!("write to tun0: {e}"))
    }

    /// The kernel's connection table: (client, cport, vip, vport) → (server, port, state).
    fn table(&mut self) -> Result<HashMap<ConnKey, ConnTarget>, String> {
        let mut text = String::new();
        self.conns
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.conns.read_to_string(&mut text))
            .map_err(|e| format!("read ip_vs_conn: {e}"))?;
        let mut out = HashMap::new();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                continue;
            }
            let addr = |s: &str| u32::from_str_radix(s, 16).map(|v| IpAddr::V4(Ipv4Addr::from(v)));
            let port = |s: &str| u16::from_str_radix(s, 16);
            let parsed = (|| -> Result<_, std::num::ParseIntError> {
                Ok((
                    (addr(f[1])?, port(f[2])?, addr(f[3])?, port(f[4])?),
                    (addr(f[5])?, port(f[6])?, f[7].to_owned()),
                ))
            })();
            if let Ok((k, v)) = parsed {
                out.insert(k, v);
            }
        }
        Ok(out)
    }

    fn open(&mut self, flow: &Flow) -> Result<Pick, String> {
        let key = (
            IpAddr::V4(flow.client),
            flow.sport,
            IpAddr::V4(flow.vip),
            flow.vport,
        );
        let flags = if flow.protocol == Protocol::Tcp {
            TcpFlags::SYN
        } else {
            0
        };
        self.send(flow, flags)?;
        let deadline = Instant::now() + Duration::from_millis(300);
        loop {
            if let Some((addr, port, _)) = self.table()?.get(&key) {
                return Ok(Some((*addr, *port)));
            }
            if Instant::now() > deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The two sides, stepped together.
pub struct Pair {
    pub kernel: Kernel,
    pub director: Director,
    started: Instant,
    /// Kernel picks of every `Open`, in order (for the Appendix A vectors).
    pub kernel_picks: Vec<Pick>,
}

impl Pair {
    /// Both sides, empty; `vips` are the addresses services will use.
    pub fn new(vips: &[Ipv4Addr]) -> Result<Pair, String> {
        Pair::with_config(vips, DirectorConfig::default())
    }

    /// Both sides, empty, the userspace director configured as `cfg`.
    pub fn with_config(vips: &[Ipv4Addr], cfg: DirectorConfig) -> Result<Pair, String> {
        Ok(Pair {
            kernel: Kernel::new(vips)?,
            director: Director::new(cfg),
            started: Instant::now(),
            kernel_picks: Vec::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn director_packet(&mut self, flow: &Flow, flags: u8) -> Verdict {
        let now = self.now_ms();
        self.director.lookup_or_schedule(
            now,
            &FlowKey {
                protocol: flow.protocol,
                saddr: IpAddr::V4(flow.client),
                sport: flow.sport,
                daddr: IpAddr::V4(flow.vip),
                dport: flow.vport,
                tcp_flags: TcpFlags(flags),
                fwmark: 0,
                len: 40,
            },
        )
    }

    /// Applies `step` to both sides; `Err` names the first disagreement.
    pub fn step(&mut self, step: &Step) -> Result<(), String> {
        let control = |what: &str,
                       k: Result<(), lvslab_spec::lb::LbError>,
                       u: Result<(), lvslab_spec::lb::LbError>| {
            match (k, u) {
                (Ok(()), Ok(())) => Ok(()),
                (Err(a), Err(b)) if a.errno() == b.errno() => Ok(()),
                (k, u) => Err(format!("{what}: kernel {k:?}, userspace {u:?}")),
            }
        };
        match step {
            Step::AddService(s) => control(
                "add service",
                self.kernel.ipvs.add_service(s),
                self.director.add_service(s),
            )?,
            Step::EditService(s) => control(
                "edit service",
                self.kernel.ipvs.edit_service(s),
                self.director.edit_service(s),
            )?,
            Step::AddDest(k, d) => control(
                "add dest",
                self.kernel.ipvs.add_dest(k, d),
                self.director.add_dest(k, d),
            )?,
            Step::EditDest(k, d) => control(
                "edit dest",
                self.kernel.ipvs.edit_dest(k, d),
                self.director.edit_dest(k, d),
            )?,
            Step::DeleteDest(k, a, p) => control(
                "delete dest",
                self.kernel.ipvs.delete_dest(k, *a, *p),
                self.director.delete_dest(k, *a, *p),
            )?,
            Step::Open(flow) => {
                let flags = if flow.protocol == Protocol::Tcp {
                    TcpFlags::SYN
                } else {
                    0
                };
                let ours = match self.director_packet(flow, flags) {
                    Verdict::Forward(f) => Some((f.daddr, f.dport)),
                    _ => None,
                };
                let theirs = self.kernel.open(flow)?;
                self.kernel_picks.push(theirs);
                if ours != theirs {
                    return Err(format!(
                        "pick for {flow:?}: kernel {theirs:?}, userspace {ours:?}"
                    ));
                }
            }
            Step::Segment(flow, flags) => {
                self.director_packet(flow, *flags);
                self.kernel.send(flow, *flags)?;
            }
        }
        self.compare_counters()
    }

    /// Active/inactive counters of every destination agree (the kernel is given a moment
    /// to finish processing the packet just written).
    fn compare_counters(&mut self) -> Result<(), String> {
        let ours = counters(self.director.list().map_err(|e| e.to_string())?);
        let deadline = Instant::now() + Duration::from_millis(300);
        loop {
            let theirs = counters(self.kernel.ipvs.list().map_err(|e| e.to_string())?);
            if theirs == ours {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "destination counters (key, addr, port, weight, active, inactive):\n kernel    {theirs:?}\n userspace {ours:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Runs a whole script; on a disagreement, says which step.
    pub fn run(&mut self, steps: &[Step]) -> Result<(), String> {
        for (i, step) in steps.iter().enumerate() {
            self.step(step)
                .map_err(|e| format!("step {i} {step:?}: {e}"))?;
        }
        Ok(())
    }
}
