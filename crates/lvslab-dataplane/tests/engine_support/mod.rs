//! Running a shipped lab with the userspace dataplane for the engine tests (root: builds
//! anonymous namespaces, so nothing outlives the test process).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use lvslab_dataplane::engine::{start_for_lab_with, EngineOptions, UserspaceDataplane};
use lvslab_netns::apply::{build, LabInstance, Naming};
use lvslab_netns::nft::{self, Family, Match, PortField};
use lvslab_netns::plan::{plan, DecapImpl, PlanOptions};
use lvslab_netns::traffic::{http_get, start_server, ServerHandle};
use lvslab_spec::lab_path;
use lvslab_spec::lb::{LoadBalancer, Scheduler, ServiceStatus};
use lvslab_spec::model::Lab;

pub const GET_TIMEOUT: Duration = Duration::from_secs(3);

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the engine lab tests build network namespaces and must run as root (euid 0); \
         run `sudo -E cargo test -p lvslab-dataplane --test engine_labs`"
    );
}

pub fn labs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../labs")
}

/// A running lab with its servers and dataplane; torn down in the right order on drop.
pub struct Running {
    pub lab: Lab,
    pub dp: Option<UserspaceDataplane>,
    pub servers: Vec<ServerHandle>,
    pub inst: Option<LabInstance>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.dp.take();
        self.servers.clear();
        if let Some(inst) = self.inst.take() {
            let errors = inst.teardown();
            assert!(errors.ok(), "teardown: {errors:?}");
        }
    }
}

impl Running {
    pub fn start(name: &str, params: &[(&str, &str)], instance: &str) -> Running {
        Running::start_with(name, params, instance, EngineOptions::default())
    }

    pub fn start_with(
        name: &str,
        params: &[(&str, &str)],
        instance: &str,
        options: EngineOptions,
    ) -> Running {
        require_root();
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lab = lvslab_spec::load_lab(&lab_path(&labs_dir(), name), &params)
            .unwrap_or_else(|e| panic!("load lab {name}: {e:?}"));
        let p = plan(
            &lab,
            &PlanOptions {
                instance: instance.to_string(),
                decap: DecapImpl::Userspace,
                run: None,
            },
        )
        .unwrap_or_else(|e| panic!("plan lab {name}: {e}"));
        let inst = build(&p, Naming::Anonymous, &AtomicBool::new(false))
            .unwrap_or_else(|e| panic!("build lab {name}: {e}"));
        let mut running = Running {
            lab,
            dp: None,
            servers: Vec::new(),
            inst: Some(inst),
        };
        let inst = running.inst.as_ref().expect("just set");
        for node in &running.lab.nodes {
            let ns = inst.ns(&node.name).expect("every node has a namespace");
            for s in &node.servers {
                let h = start_server(ns, &node.name, s)
                    .unwrap_or_else(|e| panic!("start server on {}: {e}", node.name));
                running.servers.push(h);
            }
        }
        let dp = start_for_lab_with(&running.lab, inst, options)
            .unwrap_or_else(|e| panic!("start the userspace dataplane for {name}: {e}"));
        running.dp = Some(dp);
        running
    }

    pub fn dp(&self) -> &UserspaceDataplane {
        self.dp.as_ref().expect("dataplane running")
    }

    pub fn director(&self) -> String {
        self.lab.services[0].director.clone()
    }

    pub fn list(&self) -> Vec<ServiceStatus> {
        self.dp()
            .with_director(&self.director(), |d| d.list())
            .expect("director exists")
            .expect("list services")
    }

    /// `n` GETs from the lab's traffic source; the answering node of each.
    pub fn gets(&self, n: usize) -> BTreeMap<String, usize> {
        let t = self.lab.traffic.as_ref().expect("lab has [traffic]");
        let inst = self.inst.as_ref().expect("running");
        let ns = inst.ns(&t.from).expect("traffic source namespace");
        let to = SocketAddr::new(t.to, t.port);
        let mut counts = BTreeMap::new();
        for k in 0..n {
            match http_get(ns, &t.from, to, GET_TIMEOUT) {
                Ok(body) => *counts.entry(body).or_insert(0) += 1,
                Err(e) => panic!(
                    "GET {k} of {n} from {} to {to} failed: {e}\nengine: {:#?}\nservices: {:#?}",
                    t.from,
                    self.dp().stats(),
                    self.list()
                ),
            }
        }
        counts
    }

    /// What rr/wrr must give over `n` new connections, per real-server node.
    pub fn expected(&self, scheduler: Scheduler, n: usize) -> BTreeMap<String, usize> {
        let svc = &self.lab.services[0];
        let weight = |w: u32| match scheduler {
            Scheduler::Rr => 1,
            Scheduler::Wrr => w as usize,
            other => panic!("no closed-form expectation for {other}"),
        };
        let total: usize = svc
            .real_servers
            .iter()
            .map(|r| weight(r.config.weight))
            .sum();
        assert_eq!(
            n % total,
            0,
            "{n} requests are not whole {scheduler} cycles"
        );
        svc.real_servers
            .iter()
            .map(|r| {
                let node = r.node.clone().expect("lab real servers name their node");
                (node, n / total * weight(r.config.weight))
            })
            .collect()
    }

    pub fn assert_conns(&self, want: u64) {
        let list = self.list();
        let conns: u64 = list.iter().map(|s| s.stats.conns).sum();
        assert_eq!(conns, want, "director connection counter: {list:#?}");
        let dest_conns: u64 = list
            .iter()
            .flat_map(|s| &s.dests)
            .map(|d| d.stats.conns)
            .sum();
        assert_eq!(
            dest_conns, want,
            "destination connection counters: {list:#?}"
        );
    }
}

/// The expressions of `udp dport PORT` in the engine's netdev table.
pub fn udp_dport(port: u16) -> String {
    let m = Match::Port {
        protocol: lvslab_spec::lb::Protocol::Udp,
        field: PortField::Dport,
        port,
    };
    nft::matches_text(Family::Netdev, &[m])
}

/// Waits until a rule of the namespace's ruleset holds `needle` (expressions as
/// [`nft::matches_text`] writes them).
pub fn wait_for_rule(ns: &lvslab_netns::Netns, needle: &str) {
    for _ in 0..40 {
        let rules = nft::list(ns).expect("nft list ruleset").to_string();
        if rules
            .lines()
            .any(|l| l.starts_with("rule ") && l.contains(needle))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "no nft rule with {needle:?}:\n{}",
        nft::list(ns).map(|l| l.to_string()).unwrap_or_default()
    );
}
