//! The in-memory dataplanes and command-line helpers the tests share.

use std::net::{IpAddr, Ipv4Addr};

use lvslab_ipvsadm::{parse, run, Outcome};
use lvslab_spec::lb::{
    DestConfig, DestStatus, LbError, LbInfo, LoadBalancer, Protocol, ServiceConfig, ServiceKey,
    ServiceStatus, Stats, Timeouts,
};

/// Kernel-like model: services in creation order, destinations newest first.
#[derive(Default)]
pub struct FakeLb {
    pub services: Vec<ServiceStatus>,
    pub timeouts: Timeouts,
}

impl FakeLb {
    fn svc(&mut self, key: &ServiceKey) -> Result<&mut ServiceStatus, LbError> {
        self.services
            .iter_mut()
            .find(|s| s.config.key == *key)
            .ok_or_else(|| LbError::NotFound(format!("service {key}")))
    }

    fn check_dest(dest: &DestConfig) -> Result<(), LbError> {
        if dest.weight > i32::MAX as u32 {
            return Err(LbError::Range("weight".into()));
        }
        if dest.l_threshold > dest.u_threshold {
            return Err(LbError::Range("l_threshold > u_threshold".into()));
        }
        Ok(())
    }
}

impl LoadBalancer for FakeLb {
    fn info(&mut self) -> Result<LbInfo, LbError> {
        Ok(LbInfo {
            version: "1.2.1".into(),
            conn_table_size: 4096,
            dataplane: "fake".into(),
        })
    }
    fn add_service(&mut self, svc: &ServiceConfig) -> Result<(), LbError> {
        if self.svc(&svc.key).is_ok() {
            return Err(LbError::Exists(format!("service {}", svc.key)));
        }
        self.services.push(ServiceStatus {
            config: svc.clone(),
            stats: Stats::default(),
            dests: Vec::new(),
        });
        Ok(())
    }
    fn edit_service(&mut self, svc: &ServiceConfig) -> Result<(), LbError> {
        self.svc(&svc.key)?.config = svc.clone();
        Ok(())
    }
    fn delete_service(&mut self, key: &ServiceKey) -> Result<(), LbError> {
        self.svc(key)?;
        self.services.retain(|s| s.config.key != *key);
        Ok(())
    }
    fn add_dest(&mut self, key: &ServiceKey, dest: &DestConfig) -> Result<(), LbError> {
        Self::check_dest(dest)?;
        let s = self.svc(key)?;
        if s.dests
            .iter()
            .any(|d| d.config.addr == dest.addr && d.config.port == dest.port)
        {
            return Err(LbError::Exists("destination".into()));
        }
        s.dests.insert(
            0,
            DestStatus {
                config: dest.clone(),
                active_conns: 0,
                inactive_conns: 0,
                persist_conns: 0,
                stats: Stats::default(),
            },
        );
        Ok(())
    }
    fn edit_dest(&mut self, key: &ServiceKey, dest: &DestConfig) -> Result<(), LbError> {
        Self::check_dest(dest)?;
        let s = self.svc(key)?;
        let d = s
            .dests
            .iter_mut()
            .find(|d| d.config.addr == dest.addr && d.config.port == dest.port)
            .ok_or_else(|| LbError::NotFound("destination".into()))?;
        d.config = dest.clone();
        Ok(())
    }
    fn delete_dest(&mut self, key: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), LbError> {
        let s = self.svc(key)?;
        let before = s.dests.len();
        s.dests
            .retain(|d| !(d.config.addr == addr && d.config.port == port));
        if s.dests.len() == before {
            return Err(LbError::NotFound("destination".into()));
        }
        Ok(())
    }
    fn list(&mut self) -> Result<Vec<ServiceStatus>, LbError> {
        Ok(self.services.clone())
    }
    fn zero(&mut self, key: Option<&ServiceKey>) -> Result<(), LbError> {
        let zero_one = |s: &mut ServiceStatus| {
            s.stats = Stats::default();
            for d in &mut s.dests {
                d.stats = Stats::default();
            }
        };
        match key {
            Some(k) => zero_one(self.svc(k)?),
            None => self.services.iter_mut().for_each(zero_one),
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), LbError> {
        self.services.clear();
        Ok(())
    }
    fn timeouts(&mut self) -> Result<Timeouts, LbError> {
        Ok(self.timeouts)
    }
    fn set_timeouts(&mut self, t: &Timeouts) -> Result<(), LbError> {
        for (cur, new) in [
            (&mut self.timeouts.tcp, t.tcp),
            (&mut self.timeouts.tcp_fin, t.tcp_fin),
            (&mut self.timeouts.udp, t.udp),
        ] {
            if new != 0 {
                *cur = new;
            }
        }
        Ok(())
    }
}

/// Splits a command line as a shell would (no quoting needed here), dropping `ipvsadm`.
pub fn words(line: &str) -> Vec<String> {
    line.split_whitespace()
        .skip_while(|w| *w == "ipvsadm")
        .map(str::to_string)
        .collect()
}

pub fn sh(lb: &mut FakeLb, line: &str) -> Outcome {
    run(&words(line), lb)
}

/// Runs a line that must succeed silently.
pub fn ok(lb: &mut FakeLb, line: &str) {
    let out = sh(lb, line);
    assert_eq!(
        (out.exit_code, out.stderr.as_str(), out.stdout.as_str()),
        (0, "", ""),
        "`{line}`"
    );
}

/// Runs a line that must fail with exactly this message and status.
pub fn fails(lb: &mut FakeLb, line: &str, message: &str, code: i32) {
    let out = sh(lb, line);
    assert_eq!(
        (out.stderr.as_str(), out.exit_code, out.stdout.as_str()),
        (format!("{message}\n").as_str(), code, ""),
        "`{line}`"
    );
}

/// Runs a command line that must be refused with ipvsadm's words as the first line of
/// the message, followed by our explanation.
pub fn refused(lb: &mut FakeLb, line: &str, ipvsadm_words: &str, code: i32) {
    let out = sh(lb, line);
    assert_eq!((out.exit_code, out.stdout.as_str()), (code, ""), "`{line}`");
    let mut lines = out.stderr.lines();
    assert_eq!(
        lines.next(),
        Some(ipvsadm_words),
        "`{line}`: {}",
        out.stderr
    );
    assert!(lines.next().is_some(), "`{line}`: no explanation");
}

pub fn parse_err(line: &str) -> (String, i32) {
    let e = parse(&words(line)).expect_err(line);
    (e.message, e.exit_code)
}

pub fn v4(s: &str) -> IpAddr {
    IpAddr::V4(s.parse::<Ipv4Addr>().expect("test address"))
}

pub fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: v4(addr),
        port,
    }
}

pub fn service<'a>(lb: &'a FakeLb, key: &ServiceKey) -> &'a ServiceStatus {
    lb.services
        .iter()
        .find(|s| s.config.key == *key)
        .expect("service present")
}

pub fn dest<'a>(lb: &'a FakeLb, key: &ServiceKey, addr: &str, port: u16) -> &'a DestConfig {
    &service(lb, key)
        .dests
        .iter()
        .find(|d| d.config.addr == v4(addr) && d.config.port == port)
        .unwrap_or_else(|| panic!("destination {addr}:{port} present"))
        .config
}

pub const ARTICLE_NAT: [&str; 4] = [
    "ipvsadm -A -t 192.168.80.10:80 -s wrr",
    "ipvsadm -a -t 192.168.80.10:80 -r 192.168.80.11:8080 -m -w 3",
    "ipvsadm -a -t 192.168.80.10:80 -r 192.168.80.12:8080 -m -w 2",
    "ipvsadm -a -t 192.168.80.10:80 -r 192.168.80.13:8080 -m",
];

pub fn article_nat() -> FakeLb {
    let mut lb = FakeLb::default();
    for line in ARTICLE_NAT {
        ok(&mut lb, line);
    }
    lb
}

/// One `-L -n` destination line from ipvsadm's printf `"  -> %-28s %-7s %-6d %-10u %-10u\n"`.
pub fn dest_line(name: &str, fwd: &str, weight: u32) -> String {
    format!("  -> {name:<28} {fwd:<7} {weight:<6} {:<10} {:<10}\n", 0, 0)
}

pub const HEADER: &str = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  \
-> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

/// A dataplane that refuses everything with one error.
pub struct Refusing(pub LbError);

impl LoadBalancer for Refusing {
    fn info(&mut self) -> Result<LbInfo, LbError> {
        Err(self.0.clone())
    }
    fn add_service(&mut self, _: &ServiceConfig) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn edit_service(&mut self, _: &ServiceConfig) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn delete_service(&mut self, _: &ServiceKey) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn add_dest(&mut self, _: &ServiceKey, _: &DestConfig) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn edit_dest(&mut self, _: &ServiceKey, _: &DestConfig) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn delete_dest(&mut self, _: &ServiceKey, _: IpAddr, _: u16) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn list(&mut self) -> Result<Vec<ServiceStatus>, LbError> {
        Err(self.0.clone())
    }
    fn zero(&mut self, _: Option<&ServiceKey>) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn flush(&mut self) -> Result<(), LbError> {
        Err(self.0.clone())
    }
    fn timeouts(&mut self) -> Result<Timeouts, LbError> {
        Err(self.0.clone())
    }
    fn set_timeouts(&mut self, _: &Timeouts) -> Result<(), LbError> {
        Err(self.0.clone())
    }
}
