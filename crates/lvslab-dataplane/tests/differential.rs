//! Differential scheduling: the same connections, destination edits and TCP segments go
//! into kernel IPVS (a real Debian kernel in the lvslab-vm guest, packets written into a
//! TUN device of the director namespace) and into the userspace `Director`; after every
//! step the real server each picked and every destination's weight/active/inactive
//! counters must agree. The kernel's picks also confirm the Appendix A / §1.6 vectors of the
//! IPVS notes (docs/kernel-confirmations.md records them).
//!
//! Packets are crafted, not produced by real TCP stacks, so both sides see exactly the same
//! flags: DR destinations (the kernel's input-only TCP state table), SYN opens, ACK
//! establishes, FIN closes (FIN_WAIT, inactive, long timeout so nothing expires mid-run).

#[path = "../../lvslab-ipvsadm/tests/vm_support/mod.rs"]
mod vm_support;

mod differential_support;

use std::net::{IpAddr, Ipv4Addr};

use differential_support::{Flow, Pair, Pick, Step};
use lvslab_dataplane::conn::TcpFlags;
use lvslab_dataplane::director::DirectorConfig;
use lvslab_dataplane::sched::Profile;
use lvslab_spec::lb::{DestConfig, Protocol, Scheduler, ServiceConfig, ServiceKey};

const MODULES: &[&str] = &[
    "tun",
    "ip_vs",
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_lc",
    "ip_vs_wlc",
    "ip_vs_sed",
    "ip_vs_nq",
    "ip_vs_fo",
    "ip_vs_ovf",
    "ip_vs_dh",
    "ip_vs_sh",
    "ip_vs_mh",
    "ip_vs_lblc",
    "ip_vs_lblcr",
];

fn main() {
    vm_support::main(
        &[
            ("appendix_a_vectors", appendix_a_vectors),
            ("hash_vectors", hash_vectors),
            ("mixed_patterns", mixed_patterns),
            ("kernel_is_p2026_not_classic", kernel_is_p2026_not_classic),
        ],
        MODULES,
    );
}

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const A: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const C: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 3);
const D: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 4);

fn key(protocol: Protocol, vip: Ipv4Addr) -> ServiceKey {
    ServiceKey::Addr {
        protocol,
        addr: IpAddr::V4(vip),
        port: 80,
    }
}

fn dest(addr: Ipv4Addr, weight: u32) -> DestConfig {
    DestConfig {
        weight,
        ..DestConfig::new(IpAddr::V4(addr), 80)
    }
}

fn flow(protocol: Protocol, client: Ipv4Addr, sport: u16) -> Flow {
    Flow {
        protocol,
        client,
        sport,
        vip: VIP,
        vport: 80,
    }
}

/// Names a pick by the Appendix A letters (or the address).
fn name(p: &Pick) -> String {
    match p {
        None => "-".into(),
        Some((IpAddr::V4(a), _)) if *a == A => "A".into(),
        Some((IpAddr::V4(a), _)) if *a == B => "B".into(),
        Some((IpAddr::V4(a), _)) if *a == C => "C".into(),
        Some((IpAddr::V4(a), _)) if *a == D => "D".into(),
        Some((a, _)) => a.to_string(),
    }
}

fn names(p: &[Pick]) -> String {
    p.iter().map(name).collect::<Vec<_>>().join(" ")
}

/// A script under construction: a service on VIP:80, then steps.
struct Script {
    key: ServiceKey,
    steps: Vec<Step>,
    next_port: u16,
}

impl Script {
    fn new(protocol: Protocol, sched: Scheduler) -> Script {
        Script::with(ServiceConfig::new(key(protocol, VIP), sched))
    }

    fn with(svc: ServiceConfig) -> Script {
        Script {
            key: svc.key,
            steps: vec![Step::AddService(svc)],
            next_port: 10_000,
        }
    }

    fn dest(&mut self, addr: Ipv4Addr, weight: u32) -> &mut Self {
        self.steps.push(Step::AddDest(self.key, dest(addr, weight)));
        self
    }

    fn protocol(&self) -> Protocol {
        match self.key {
            ServiceKey::Addr { protocol, .. } => protocol,
            ServiceKey::Fwmark { .. } => Protocol::Tcp,
        }
    }

    /// `n` new connections from one client, kept open (TCP: SYN then ACK).
    fn open(&mut self, n: u16, established: bool) -> &mut Self {
        for _ in 0..n {
            let f = flow(
                self.protocol(),
                Ipv4Addr::new(203, 0, 113, 7),
                self.next_port,
            );
            self.next_port += 1;
            self.steps.push(Step::Open(f));
            if established && f.protocol == Protocol::Tcp {
                self.steps.push(Step::Segment(f, TcpFlags::ACK));
            }
        }
        self
    }

    fn step(&mut self, s: Step) -> &mut Self {
        self.steps.push(s);
        self
    }
}

/// Runs `script` on a fresh pair; returns the kernel's picks.
fn run(label: &str, script: &Script) -> Result<Vec<Pick>, String> {
    run_with(label, script, DirectorConfig::default())
}

fn run_with(label: &str, script: &Script, cfg: DirectorConfig) -> Result<Vec<Pick>, String> {
    let mut pair = Pair::with_config(&[VIP], cfg)?;
    pair.run(&script.steps)
        .map_err(|e| format!("{label}: kernel and userspace disagree at {e}"))?;
    println!("ok   {label}: {}", names(&pair.kernel_picks));
    Ok(pair.kernel_picks)
}

/// Runs and checks the kernel's picks against a documented vector.
fn vector(label: &str, script: &Script, want: &str) -> Result<(), String> {
    let got = names(&run(label, script)?);
    if got != want {
        return Err(format!(
            "{label}: kernel picked `{got}`, the vector says `{want}`"
        ));
    }
    println!("ok   {label}: vector confirmed");
    Ok(())
}

fn appendix_a_vectors() -> Result<(), String> {
    let mut failures = Vec::new();
    let mut check = |r: Result<(), String>| {
        if let Err(e) = r {
            eprintln!("{e}");
            failures.push(e);
        }
    };
    let abc = |sched: Scheduler, p: Protocol, w: [u32; 3]| {
        let mut s = Script::new(p, sched);
        s.dest(A, w[0]).dest(B, w[1]).dest(C, w[2]);
        s
    };
    let tcp = Protocol::Tcp;

    check(vector(
        "rr 1/1/1",
        abc(Scheduler::Rr, tcp, [1, 1, 1]).open(6, false),
        "C B A C B A",
    ));
    let mut s = abc(Scheduler::Rr, tcp, [1, 1, 1]);
    let k = s.key;
    s.open(2, false)
        .step(Step::DeleteDest(k, IpAddr::V4(B), 80))
        .open(1, false);
    check(vector("rr delete cursor", &s, "C B A"));

    check(vector(
        "wrr 4/3/2 incremental",
        abc(Scheduler::Wrr, tcp, [4, 3, 2]).open(18, false),
        "C B A A B A C B A C B A A B A C B A",
    ));
    let mut s = abc(Scheduler::Rr, tcp, [4, 3, 2]);
    let k = s.key;
    s.step(Step::EditService(ServiceConfig::new(k, Scheduler::Wrr)))
        .open(18, false);
    check(vector(
        "wrr 4/3/2 after switch",
        &s,
        "A B A C B A C B A A B A C B A C B A",
    ));
    let mut s = Script::new(tcp, Scheduler::Wrr);
    s.dest(A, 100).dest(B, 200).open(9, false);
    check(vector("wrr 100/200", &s, "B A B B A B B A B"));

    check(vector(
        "wlc idle",
        abc(Scheduler::Wlc, tcp, [5, 3, 1]).open(1, false),
        "C",
    ));
    check(vector(
        "lc idle",
        abc(Scheduler::Lc, tcp, [5, 3, 1]).open(1, false),
        "C",
    ));
    check(vector(
        "sed idle",
        abc(Scheduler::Sed, tcp, [5, 3, 1]).open(1, false),
        "A",
    ));
    check(vector(
        "nq udp",
        abc(Scheduler::Nq, Protocol::Udp, [1, 1, 1]).open(5, false),
        "C C C C C",
    ));
    check(vector(
        "lblc kept open",
        abc(Scheduler::Lblc, tcp, [1, 1, 1]).open(10, true),
        "C C B B A A A A A A",
    ));
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// `hash_32(x, bits)` of the IPVS notes §1.6 (the kernel's generic `hash_32`).
fn hash_32(x: u32, bits: u32) -> u32 {
    x.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

fn hash_vectors() -> Result<(), String> {
    // dh hashes the destination address: services on ten VIPs, each with A, B, C (list
    // [C, B, A], weights 1: bucket b → list[b mod 3]).
    let vips: Vec<Ipv4Addr> = (10..20).map(|n| Ipv4Addr::new(192, 0, 2, n)).collect();
    let mut pair = Pair::new(&vips)?;
    let list = [C, B, A];
    for (i, vip) in vips.iter().enumerate() {
        let k = key(Protocol::Tcp, *vip);
        let f = Flow {
            vip: *vip,
            sport: 20_000 + u16::try_from(i).expect("ten"),
            ..flow(Protocol::Tcp, Ipv4Addr::new(203, 0, 113, 9), 0)
        };
        let steps = [
            Step::AddService(ServiceConfig::new(k, Scheduler::Dh)),
            Step::AddDest(k, dest(A, 1)),
            Step::AddDest(k, dest(B, 1)),
            Step::AddDest(k, dest(C, 1)),
            Step::Open(f),
        ];
        pair.run(&steps).map_err(|e| format!("dh {vip}: {e}"))?;
        let bucket = hash_32(u32::from(*vip), 8);
        let want = list[usize::try_from(bucket % 3).expect("small")];
        let got = pair.kernel_picks.last().copied().flatten();
        if got != Some((IpAddr::V4(want), 80)) {
            return Err(format!(
                "dh {vip}: bucket {bucket} should pick {want}, kernel picked {got:?}"
            ));
        }
    }
    println!("ok   dh: hash_32(vip, 8) mod 3 picks for 192.0.2.10..19 confirmed");

    // sh, weights 1/1/1, port 0: 10.0.0.1 → bucket 39 → C; .2 → 137 → A; .3 → 235 → B.
    let mut s = Script::new(Protocol::Tcp, Scheduler::Sh);
    s.dest(A, 1).dest(B, 1).dest(C, 1);
    for (i, last) in [1u8, 2, 3].into_iter().enumerate() {
        s.step(Step::Open(flow(
            Protocol::Tcp,
            Ipv4Addr::new(10, 0, 0, last),
            30_000 + u16::try_from(i).expect("three"),
        )));
    }
    vector("sh 10.0.0.1/2/3", &s, "C A B")?;
    for (client, bucket) in [(1u8, 39), (2, 137), (3, 235)] {
        let h = hash_32(u32::from(Ipv4Addr::new(10, 0, 0, client)), 8);
        if h != bucket {
            return Err(format!(
                "hash_32(10.0.0.{client}, 8) is {h}, the notes say {bucket}"
            ));
        }
    }

    // mh: 10.0.0.11/12/13:80 added in that order; clients 192.168.0.1, 192.168.0.2,
    // 10.1.2.3 → .12, .12, .11.
    let mut s = Script::new(Protocol::Tcp, Scheduler::Mh);
    for last in [11u8, 12, 13] {
        s.dest(Ipv4Addr::new(10, 0, 0, last), 1);
    }
    for (i, client) in [
        Ipv4Addr::new(192, 168, 0, 1),
        Ipv4Addr::new(192, 168, 0, 2),
        Ipv4Addr::new(10, 1, 2, 3),
    ]
    .into_iter()
    .enumerate()
    {
        s.step(Step::Open(flow(
            Protocol::Tcp,
            client,
            31_000 + u16::try_from(i).expect("three"),
        )));
    }
    vector("mh 3 clients", &s, "10.0.0.12 10.0.0.12 10.0.0.11")?;

    // sh with list [C w1, B w2, A w3]: buckets C 43, B 86, A 127 in the pattern C B B A A A;
    // 24 clients 10.0.1.0..23 land where their bucket says.
    let mut s = Script::new(Protocol::Tcp, Scheduler::Sh);
    s.dest(A, 3).dest(B, 2).dest(C, 1);
    let pattern = [C, B, B, A, A, A];
    let mut want = Vec::new();
    for n in 0..24u8 {
        let client = Ipv4Addr::new(10, 0, 1, n);
        s.step(Step::Open(flow(
            Protocol::Tcp,
            client,
            32_000 + u16::from(n),
        )));
        let bucket = hash_32(u32::from(client), 8);
        let who = pattern[usize::try_from(bucket % 6).expect("small")];
        want.push(name(&Some((IpAddr::V4(who), 80))));
    }
    vector("sh weights 3/2/1", &s, &want.join(" "))
}

/// A small deterministic generator, so both sides get the same "random" pattern.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Connections opened and kept or closed, weights and thresholds edited, a destination
/// deleted and re-added, from many clients; `svc` decides the scheduler and flags.
fn pattern(svc: ServiceConfig, seed: u64, len: usize) -> Script {
    let mut s = Script::with(svc);
    let k = s.key;
    let servers = [A, B, C, D];
    let mut weights = [5u32, 3, 1, 2];
    s.dest(A, 5).dest(B, 3).dest(C, 1);
    let mut with_thresholds = dest(D, 2);
    with_thresholds.u_threshold = 3;
    with_thresholds.l_threshold = 1;
    s.step(Step::AddDest(k, with_thresholds.clone()));
    let mut rng = Lcg(seed);
    let mut open: Vec<Flow> = Vec::new();
    let mut deleted: Option<usize> = None;
    let protocol = s.protocol();
    for _ in 0..len {
        let roll = rng.below(100);
        if roll < 55 || open.is_empty() {
            let client = Ipv4Addr::new(
                10,
                9,
                u8::try_from(rng.below(4)).expect("small"),
                u8::try_from(rng.below(250)).expect("small") + 1,
            );
            let f = flow(protocol, client, s.next_port);
            s.next_port += 1;
            s.steps.push(Step::Open(f));
            if protocol == Protocol::Tcp && rng.below(10) < 7 {
                s.steps.push(Step::Segment(f, TcpFlags::ACK));
                open.push(f);
            }
        } else if roll < 80 {
            let i = usize::try_from(rng.below(open.len() as u64)).expect("small");
            let f = open.swap_remove(i);
            s.steps
                .push(Step::Segment(f, TcpFlags::FIN | TcpFlags::ACK));
        } else if roll < 88 {
            let i = usize::try_from(rng.below(4)).expect("small");
            if deleted != Some(i) {
                weights[i] = u32::try_from(rng.below(6)).expect("small");
                let mut d = dest(servers[i], weights[i]);
                if i == 3 {
                    d.u_threshold = with_thresholds.u_threshold;
                    d.l_threshold = with_thresholds.l_threshold;
                }
                s.steps.push(Step::EditDest(k, d));
            }
        } else if roll < 94 {
            let u = u32::try_from(rng.below(5)).expect("small");
            with_thresholds.u_threshold = u;
            with_thresholds.l_threshold = u
                .saturating_sub(1)
                .min(u32::try_from(rng.below(3)).expect("small"));
            with_thresholds.weight = weights[3];
            if deleted != Some(3) {
                s.steps.push(Step::EditDest(k, with_thresholds.clone()));
            }
        } else {
            match deleted.take() {
                None => {
                    let i = usize::try_from(rng.below(4)).expect("small");
                    s.steps
                        .push(Step::DeleteDest(k, IpAddr::V4(servers[i]), 80));
                    deleted = Some(i);
                }
                Some(i) => {
                    let mut d = dest(servers[i], weights[i]);
                    if i == 3 {
                        d = with_thresholds.clone();
                        d.weight = weights[3];
                    }
                    s.steps.push(Step::AddDest(k, d));
                }
            }
        }
    }
    s
}

fn mixed_patterns() -> Result<(), String> {
    let tcp = |sched| ServiceConfig::new(key(Protocol::Tcp, VIP), sched);
    let flagged = |sched, one: bool, two: bool| {
        let mut s = tcp(sched);
        s.flags.sched1 = one;
        s.flags.sched2 = two;
        s
    };
    let mut cases: Vec<(String, ServiceConfig)> = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Fo,
        Scheduler::Ovf,
        Scheduler::Dh,
        Scheduler::Sh,
        Scheduler::Mh,
        Scheduler::Lblc,
        Scheduler::Lblcr,
    ]
    .into_iter()
    .map(|s| (s.name().to_owned(), tcp(s)))
    .collect();
    cases.push((
        "sh fallback+port".into(),
        flagged(Scheduler::Sh, true, true),
    ));
    cases.push(("sh fallback".into(), flagged(Scheduler::Sh, true, false)));
    cases.push((
        "mh fallback+port".into(),
        flagged(Scheduler::Mh, true, true),
    ));
    cases.push(("mh port".into(), flagged(Scheduler::Mh, false, true)));
    let mut udp_wlc = ServiceConfig::new(key(Protocol::Udp, VIP), Scheduler::Wlc);
    udp_wlc.flags = Default::default();
    cases.push(("wlc udp".into(), udp_wlc));
    let mut failures = Vec::new();
    for (i, (label, svc)) in cases.into_iter().enumerate() {
        let script = pattern(svc, 0x5eed + i as u64, 70);
        if let Err(e) = run(&format!("pattern {label}"), &script) {
            eprintln!("{e}");
            failures.push(e);
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// The same patterns against a director imitating the classic (pre-2026) kernels must
/// disagree with this kernel somewhere: that both confirms the guest kernel (6.12.117)
/// carries the 2026 series and shows the comparison can tell the profiles apart.
fn kernel_is_p2026_not_classic() -> Result<(), String> {
    let classic = DirectorConfig {
        profile: Profile::Classic,
        ..DirectorConfig::default()
    };
    let mut disagreements = Vec::new();
    for (i, sched) in [Scheduler::Wlc, Scheduler::Lc, Scheduler::Sed, Scheduler::Rr]
        .into_iter()
        .enumerate()
    {
        let svc = ServiceConfig::new(key(Protocol::Tcp, VIP), sched);
        let script = pattern(svc, 0xc1a5 + i as u64, 70);
        run(&format!("P-2026 {sched}"), &script)?;
        if let Err(e) = run_with(&format!("classic {sched}"), &script, classic.clone()) {
            println!("ok   classic profile disagrees as expected: {e}");
            disagreements.push(e);
        }
    }
    if disagreements.is_empty() {
        return Err("a classic-profile director agreed with the kernel on every pattern: the patterns cannot tell the profiles apart".into());
    }
    Ok(())
}
