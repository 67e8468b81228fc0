//! Dataplane throughput benchmark (needs root): UDP packets per second through the
//! userspace director in NAT and DR mode against the kernel's own forwarding path with an
//! nft `dnat` rule, on one topology built once, all in one run. Plain `main`, bounded in
//! time; results on stdout.
//!
//! Run: `cargo bench -p lvslab-dataplane --bench dataplane` (options after `--`:
//! `--seconds S` per measurement, default 3; `--rounds N`, default 2).
//!
//! Topology (anonymous namespaces from an inline lab, gone with the process):
//! `client eth0 ── eth0 director eth1 ── eth0 rs1`. The client sends 64-byte UDP frames
//! (22-byte payload) to VIP:9000 from one socket, as fast as `send` returns, from its own
//! thread. rs1 has a bound UDP socket on 9000 that nobody reads: its kernel counts every
//! datagram that reaches the socket layer (`Udp: InDatagrams` + `RcvbufErrors`), so
//! counting costs the real server no user-space CPU. Each mode runs for the same time,
//! modes interleaved per round:
//!
//! - `kernel`: no engine; the director's kernel forwards (`ip_forward=1`) with an nft
//!   `dnat to RIP:9000` rule in `prerouting` (conntrack keeps the mapping);
//! - `nat`: the userspace engine with a UDP service, rs1 as a masquerading destination;
//! - `dr`: the same service with rs1 as a direct-routing destination (rs1 holds the VIP
//!   on `lo`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use lvslab_dataplane::engine::{start_for_lab, UserspaceDataplane};
use lvslab_netns::apply::{build, LabInstance, Naming};
use lvslab_netns::plan::{plan, DecapImpl, PlanOptions};
use lvslab_netns::{nft, Netns};
use lvslab_spec::lb::{DestConfig, ForwardMethod, LoadBalancer, Protocol, ServiceKey};
use lvslab_spec::model::Lab;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
const RIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const PORT: u16 = 9000;
/// 22 bytes of UDP payload + 8 UDP + 20 IP + 14 Ethernet = 64-byte frames.
const PAYLOAD: usize = 22;

const LAB: &str = r#"
[lab]
name = "bench"
title = "dataplane benchmark: client, director, one real server"
mode = "nat"

[[node]]
name = "client"
role = "client"
interfaces = { eth0 = ["192.0.2.1/24"] }
routes = [{ to = "default", via = "director:eth0" }]

[[node]]
name = "director"
role = "director"
interfaces = { eth0 = ["192.0.2.254/24"], eth1 = ["198.51.100.254/24"] }
sysctls = { "net.ipv4.ip_forward" = 1 }

[[node]]
name = "rs1"
role = "real-server"
interfaces = { eth0 = ["198.51.100.1/24"], lo = ["192.0.2.254/32"] }
routes = [{ to = "default", via = "director:eth1" }]
sysctls = { "net.ipv4.conf.all.arp_ignore" = 1, "net.ipv4.conf.all.arp_announce" = 2, "net.ipv4.conf.all.rp_filter" = 0, "net.ipv4.conf.eth0.rp_filter" = 0 }

[[link]]
ends = ["client:eth0", "director:eth0"]

[[link]]
ends = ["director:eth1", "rs1:eth0"]

[[service]]
director = "director"
vip = "director:eth0"
protocol = "udp"
port = 9000
scheduler = "rr"
real_server = [
  { address = "rs1:eth0", port = 9000, method = "nat", weight = 1 },
]
"#;

const SENDER_THREAD: &str = "bench sender";
/// The engine names its thread after the director node.
const ENGINE_THREAD: &str = "engine director";

/// `table ip bench_dnat { chain prerouting { type nat hook prerouting priority dstnat;
/// ip daddr 192.0.2.254 udp dport 9000 dnat to 198.51.100.1:9000 } }`.
fn kernel_dnat() -> nft::Table {
    let rule = nft::Rule::new(
        vec![
            nft::Match::Daddr {
                prefix: nft::Ipv4Prefix::host(Ipv4Addr::new(192, 0, 2, 254)),
                negate: false,
            },
            nft::Match::Port {
                protocol: lvslab_spec::lb::Protocol::Udp,
                field: nft::PortField::Dport,
                port: 9000,
            },
        ],
        nft::Statement::Dnat(nft::NatTo::addr(Ipv4Addr::new(198, 51, 100, 1)).with_port(9000)),
    )
    .expect("dnat rule");
    nft::Table::new(
        nft::Family::Ip,
        nft::Name::new("bench_dnat").expect("name"),
        vec![nft::Chain::new(
            nft::Name::new("prerouting").expect("name"),
            Some(nft::BaseChain::dstnat()),
            vec![rule],
        )],
    )
    .expect("dnat table")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Kernel,
    Nat,
    Dr,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Kernel => "kernel nft dnat",
            Mode::Nat => "userspace NAT",
            Mode::Dr => "userspace DR",
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    secs: f64,
    sent: u64,
    delivered: u64,
    /// CPU seconds of the sending thread (its syscalls, and the softirq work they run).
    sender_cpu: f64,
    /// CPU seconds of the engine thread (userspace modes).
    engine_cpu: f64,
}

impl Sample {
    fn add(&mut self, o: Sample) {
        self.secs += o.secs;
        self.sent += o.sent;
        self.delivered += o.delivered;
        self.sender_cpu += o.sender_cpu;
        self.engine_cpu += o.engine_cpu;
    }
    fn sent_pps(&self) -> f64 {
        self.sent as f64 / self.secs
    }
    fn delivered_pps(&self) -> f64 {
        self.delivered as f64 / self.secs
    }
    fn loss(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        1.0 - self.delivered as f64 / self.sent as f64
    }
}

/// CPU seconds (user + system) used so far by this process's thread named `name`.
fn thread_cpu(name: &str) -> f64 {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    for task in dir.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let f: Vec<u64> = rest
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        if f.len() > 12 {
            return (f[11] + f[12]) as f64 / ticks;
        }
    }
    0.0
}

/// Datagrams that reached rs1's UDP layer (queued or dropped for a full buffer).
fn udp_arrivals(ns: &Netns) -> u64 {
    let text = ns
        .run(|| std::fs::read_to_string("/proc/thread-self/net/snmp"))
        .expect("enter rs1")
        .expect("read /proc/thread-self/net/snmp");
    let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
    let header: Vec<&str> = lines
        .next()
        .expect("Udp header")
        .split_whitespace()
        .collect();
    let values: Vec<&str> = lines
        .next()
        .expect("Udp values")
        .split_whitespace()
        .collect();
    let field = |name: &str| -> u64 {
        let i = header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("Udp field {name}"));
        values[i].parse().expect("counter")
    };
    field("InDatagrams") + field("RcvbufErrors")
}

/// Sends from `sock` until `stop`; counts what `send` accepted.
fn sender(sock: UdpSocket, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let payload = [0x5au8; PAYLOAD];
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..64 {
            if sock.send(&payload).is_ok() {
                n += 1;
            }
        }
        sent.store(n, Ordering::Relaxed);
    }
    sent.store(n, Ordering::Relaxed);
}

/// One measurement: warm-up, then `secs` of unpaced sending.
fn measure(client: &Netns, rs: &Netns, secs: f64) -> Sample {
    let sock = client
        .run(|| -> std::io::Result<UdpSocket> {
            let s = UdpSocket::bind((Ipv4Addr::new(192, 0, 2, 1), 0))?;
            s.connect(SocketAddr::new(IpAddr::V4(VIP), PORT))?;
            Ok(s)
        })
        .expect("enter client")
        .expect("client socket");
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let t = {
        let (stop, sent) = (stop.clone(), sent.clone());
        thread::Builder::new()
            .name(SENDER_THREAD.into())
            .spawn(move || sender(sock, stop, sent))
            .expect("start sender thread")
    };
    // Warm-up: ARP, the first scheduling decision, conntrack entry.
    thread::sleep(Duration::from_millis(500));
    let (s0, d0, t0) = (
        sent.load(Ordering::Relaxed),
        udp_arrivals(rs),
        Instant::now(),
    );
    let (c0, e0) = (thread_cpu(SENDER_THREAD), thread_cpu(ENGINE_THREAD));
    thread::sleep(Duration::from_secs_f64(secs));
    let (s1, d1, took) = (sent.load(Ordering::Relaxed), udp_arrivals(rs), t0.elapsed());
    let (c1, e1) = (thread_cpu(SENDER_THREAD), thread_cpu(ENGINE_THREAD));
    stop.store(true, Ordering::Relaxed);
    t.join().expect("sender thread");
    // Let queued frames drain so they do not count in the next mode.
    thread::sleep(Duration::from_millis(200));
    Sample {
        secs: took.as_secs_f64(),
        sent: s1 - s0,
        delivered: d1 - d0,
        sender_cpu: c1 - c0,
        engine_cpu: e1 - e0,
    }
}

fn service_key() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Udp,
        addr: IpAddr::V4(VIP),
        port: PORT,
    }
}

/// Points the running (still idle) director's service at rs1 with `method`.
fn set_method(dp: &UserspaceDataplane, method: ForwardMethod) {
    dp.with_director("director", |d| {
        let mut dest = DestConfig::new(IpAddr::V4(RIP), PORT);
        dest.method = method;
        d.edit_dest(&service_key(), &dest)
            .expect("edit destination");
    })
    .expect("director exists");
}

fn run_mode(
    mode: Mode,
    lab: &Lab,
    inst: &LabInstance,
    secs: f64,
) -> (Sample, Option<lvslab_dataplane::engine::DataplaneStats>) {
    let client = inst.ns("client").expect("client ns");
    let director = inst.ns("director").expect("director ns");
    let rs = inst.ns("rs1").expect("rs1 ns");
    match mode {
        Mode::Kernel => {
            let table = kernel_dnat();
            nft::apply(director, &table).expect("install nft dnat");
            let s = measure(client, rs, secs);
            nft::delete_table(director, table.family(), table.name()).expect("remove nft dnat");
            (s, None)
        }
        Mode::Nat | Mode::Dr => {
            let dp = start_for_lab(lab, inst).expect("start userspace dataplane");
            if mode == Mode::Dr {
                set_method(&dp, ForwardMethod::Dr);
                // The engine reads services once per housekeeping tick.
                thread::sleep(Duration::from_millis(300));
            }
            let s = measure(client, rs, secs);
            let stats = dp.stats();
            dp.stop();
            (s, Some(stats))
        }
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the dataplane benchmark builds network namespaces: run it as root"
    );
    let secs = arg("--seconds", 3.0).clamp(0.5, 30.0);
    let rounds = arg("--rounds", 2.0).clamp(1.0, 10.0) as usize;
    let lab = lvslab_spec::parse_lab(Path::new("benches/dataplane.rs (inline lab)"), LAB, &[])
        .unwrap_or_else(|e| panic!("inline lab: {e:?}"));
    let p = plan(
        &lab,
        &PlanOptions {
            instance: "bdp".into(),
            decap: DecapImpl::Userspace,
            run: None,
        },
    )
    .expect("plan topology");
    let inst = build(&p, Naming::Anonymous, &AtomicBool::new(false)).expect("build topology");
    let rs = inst.ns("rs1").expect("rs1 ns");
    let _sink = rs
        .run(|| UdpSocket::bind((Ipv4Addr::UNSPECIFIED, PORT)))
        .expect("enter rs1")
        .expect("bind sink");

    let modes = [Mode::Kernel, Mode::Nat, Mode::Dr];
    let mut totals = [Sample::default(); 3];
    println!("dataplane: {rounds} round(s) of {secs} s per mode, 64-byte UDP frames, one flow");
    println!("load average at start: {}", load_average());
    for round in 1..=rounds {
        for (k, mode) in modes.iter().enumerate() {
            let (s, stats) = run_mode(*mode, &lab, &inst, secs);
            println!(
                "round {round} {:<16} sent {:>9.0} pps  delivered {:>9.0} pps  loss {:>5.1} %",
                mode.name(),
                s.sent_pps(),
                s.delivered_pps(),
                100.0 * s.loss()
            );
            if let Some(st) = stats {
                let e = &st.engines[0].1;
                println!(
                    "      engine: rx {} tx {} requests {} drops {:?}",
                    e.rx_frames,
                    e.tx_frames,
                    e.requests,
                    e.drops.by_name()
                );
            }
            totals[k].add(s);
        }
    }
    println!();
    println!("| mode | sender pps | delivered pps | loss | delivered / kernel | sender CPU µs/pkt | engine CPU µs/pkt |");
    println!("|---|---|---|---|---|---|---|");
    let kernel = totals[0].delivered_pps();
    for (k, mode) in modes.iter().enumerate() {
        let t = &totals[k];
        let engine = if *mode == Mode::Kernel {
            "–".to_string()
        } else {
            format!("{:.2}", 1e6 * t.engine_cpu / t.delivered.max(1) as f64)
        };
        println!(
            "| {} | {:.0} | {:.0} | {:.1} % | {:.2} | {:.2} | {} |",
            mode.name(),
            t.sent_pps(),
            t.delivered_pps(),
            100.0 * t.loss(),
            t.delivered_pps() / kernel,
            1e6 * t.sender_cpu / t.sent.max(1) as f64,
            engine
        );
    }
    drop(_sink);
    println!("load average at end: {}", load_average());
    let errors = inst.teardown();
    assert!(errors.ok(), "teardown: {errors:?}");
}
