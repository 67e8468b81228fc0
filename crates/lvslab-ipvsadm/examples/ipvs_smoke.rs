//! Drives a real kernel's IPVS through `IpvsClient` and compares our listings with the
//! real `ipvsadm`'s. Meant for the lvslab-vm guest (the host kernel has no IPVS), run in a
//! throwaway network namespace:
//!
//! ```text
//! cargo build -p lvslab-ipvsadm --example ipvs_smoke
//! cargo run -p lvslab-vm --example vm -- run -- sh -c \
//!   'modprobe ip_vs && unshare -n sh -c "ip link set lo up && $T/debug/examples/ipvs_smoke"'
//! ```
//!
//! (`$T` = the cargo target dir.) `lo` must be up: in a namespace with no address at all
//! the IPv4 local routing table does not exist yet, and the kernel then rejects every
//! IPv4 destination with `EINVAL` (its address-type check finds no table).
//!
//! Exits non-zero on the first mismatch; prints what it checked.

use std::net::{IpAddr, Ipv4Addr};
use std::process::{Command, ExitCode};

use lvslab_ipvs::IpvsClient;
use lvslab_ipvsadm::listing::{render, Layout, ListingOptions};
use lvslab_spec::lb::{
    DestConfig, ForwardMethod, LbError, LoadBalancer, Protocol, Scheduler, ServiceConfig,
    ServiceKey, Timeouts,
};

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn ipvsadm(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ipvsadm")
        .args(args)
        .output()
        .map_err(|e| format!("ipvsadm {args:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "ipvsadm {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn check(what: &str, ok: bool, detail: impl std::fmt::Display) -> Result<(), String> {
    if ok {
        println!("ok   {what}");
        Ok(())
    } else {
        Err(format!("FAIL {what}: {detail}"))
    }
}

fn compare_listing(lb: &mut IpvsClient, layout: Layout, args: &[&str]) -> Result<(), String> {
    let info = lb.info().map_err(|e| e.to_string())?;
    let ours = render(
        &info,
        &lb.list().map_err(|e| e.to_string())?,
        &ListingOptions {
            layout,
            ..ListingOptions::default()
        },
    );
    let theirs = ipvsadm(args)?;
    check(
        &format!("listing {layout:?} equals `ipvsadm {}`", args.join(" ")),
        ours == theirs,
        format!("\n--- ours ---\n{ours}--- ipvsadm ---\n{theirs}"),
    )
}

fn run() -> Result<(), String> {
    let mut lb = connect_and_flush()?;
    let vip = nat_service_lists_like_ipvsadm(&mut lb)?;
    let udp = more_service_kinds_read_back(&mut lb)?;
    let (svc, edited) = edits_apply(&mut lb, vip)?;
    errors_keep_their_kind(&mut lb, vip, &svc, edited, &udp)?;
    timeouts_zero_delete_flush(&mut lb, vip, &udp)
}

/// Connects (the capability probe) and starts from an empty table.
fn connect_and_flush() -> Result<IpvsClient, String> {
    let mut lb = IpvsClient::connect().map_err(|e| e.to_string())?;
    let info = lb.info().map_err(|e| e.to_string())?;
    println!(
        "ok   connected: family {} version {} size {}",
        lb.family_id(),
        info.version,
        info.conn_table_size
    );
    lb.flush().map_err(|e| e.to_string())?;
    Ok(lb)
}

/// A weighted round-robin NAT service with three real servers; listings in three layouts
/// equal ipvsadm's. Returns the service's key.
fn nat_service_lists_like_ipvsadm(lb: &mut IpvsClient) -> Result<ServiceKey, String> {
    let vip = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: v4(192, 168, 80, 10),
        port: 80,
    };
    lb.add_service(&ServiceConfig::new(vip, Scheduler::Wrr))
        .map_err(|e| e.to_string())?;
    for (last, w) in [(11, 3), (12, 2), (13, 1)] {
        let d = DestConfig {
            method: ForwardMethod::Nat,
            weight: w,
            ..DestConfig::new(v4(192, 168, 80, last), 8080)
        };
        lb.add_dest(&vip, &d).map_err(|e| e.to_string())?;
    }
    let listed = lb.list().map_err(|e| e.to_string())?;
    let order: Vec<String> = listed[0]
        .dests
        .iter()
        .map(|d| d.config.addr.to_string())
        .collect();
    check(
        "GET_DEST dump is newest-first",
        order == ["192.168.80.13", "192.168.80.12", "192.168.80.11"],
        format!("{order:?}"),
    )?;
    compare_listing(lb, Layout::Default, &["-L", "-n"])?;
    compare_listing(lb, Layout::Stats, &["-L", "-n", "--stats"])?;
    compare_listing(lb, Layout::Rate, &["-L", "-n", "--rate"])?;
    Ok(vip)
}

/// A persistent fwmark service, a one-packet UDP service with a GUE tunnel destination
/// and a SIP-persistence service: each reads back as given and the listings equal
/// ipvsadm's. Returns the UDP service.
fn more_service_kinds_read_back(lb: &mut IpvsClient) -> Result<ServiceConfig, String> {
    let mut fw = ServiceConfig::new(
        ServiceKey::Fwmark {
            family: lvslab_spec::lb::Family::Inet,
            mark: 7,
        },
        Scheduler::Sh,
    );
    fw.flags.persistent = true;
    fw.flags.sched1 = true;
    fw.flags.sched2 = true;
    fw.timeout = 300;
    fw.netmask = u32::from(Ipv4Addr::new(255, 255, 255, 0));
    lb.add_service(&fw).map_err(|e| e.to_string())?;
    let mut udp = ServiceConfig::new(
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: v4(198, 51, 100, 1),
            port: 53,
        },
        Scheduler::Rr,
    );
    udp.flags.one_packet = true;
    lb.add_service(&udp).map_err(|e| e.to_string())?;
    let tun = DestConfig {
        method: ForwardMethod::Tunnel,
        tun_type: lvslab_spec::lb::Encap::Gue,
        tun_port: 5555,
        tun_flags: 1,
        u_threshold: 100,
        l_threshold: 50,
        ..DestConfig::new(v4(198, 51, 100, 7), 53)
    };
    lb.add_dest(&udp.key, &tun).map_err(|e| e.to_string())?;
    let mut sip = ServiceConfig::new(
        ServiceKey::Addr {
            protocol: Protocol::Udp,
            addr: v4(198, 51, 100, 2),
            port: 5060,
        },
        Scheduler::Rr,
    );
    sip.flags.persistent = true;
    sip.timeout = 360;
    sip.pe_name = Some("sip".into());
    lb.add_service(&sip).map_err(|e| e.to_string())?;
    let got = lb.list().map_err(|e| e.to_string())?;
    let back = got
        .iter()
        .find(|s| s.config.key == udp.key)
        .and_then(|s| s.dests.first())
        .map(|d| d.config.clone());
    check(
        "GUE tunnel dest reads back",
        back.as_ref() == Some(&tun),
        format!("{back:?}"),
    )?;
    let fw_back = got
        .iter()
        .find(|s| s.config.key == fw.key)
        .map(|s| s.config.clone());
    check(
        "fwmark sh service reads back",
        fw_back.as_ref() == Some(&fw),
        format!("{fw_back:?}"),
    )?;
    compare_listing(lb, Layout::Default, &["-L", "-n"])?;
    compare_listing(lb, Layout::Thresholds, &["-L", "-n", "--thresholds"])?;
    compare_listing(
        lb,
        Layout::PersistentConn,
        &["-L", "-n", "--persistent-conn"],
    )?;
    Ok(udp)
}

/// SET_DEST and SET_SERVICE on the NAT service; returns the service and destination as
/// edited.
fn edits_apply(
    lb: &mut IpvsClient,
    vip: ServiceKey,
) -> Result<(ServiceConfig, DestConfig), String> {
    let edited = DestConfig {
        method: ForwardMethod::Nat,
        weight: 5,
        ..DestConfig::new(v4(192, 168, 80, 12), 8080)
    };
    lb.edit_dest(&vip, &edited).map_err(|e| e.to_string())?;
    let mut svc = ServiceConfig::new(vip, Scheduler::Rr);
    svc.flags.persistent = true;
    svc.timeout = 600;
    lb.edit_service(&svc).map_err(|e| e.to_string())?;
    let got = lb.list().map_err(|e| e.to_string())?;
    let s = got
        .iter()
        .find(|s| s.config.key == vip)
        .ok_or("service vanished")?;
    check(
        "SET_SERVICE applied",
        s.config == svc,
        format!("{:?}", s.config),
    )?;
    let d = s
        .dests
        .iter()
        .find(|d| d.config.addr == edited.addr)
        .ok_or("dest vanished")?;
    check(
        "SET_DEST applied",
        d.config == edited,
        format!("{:?}", d.config),
    )?;
    Ok((svc, edited))
}

/// Kernel refusals map to the `LbError` kind ipvsadm's message stands for.
fn errors_keep_their_kind(
    lb: &mut IpvsClient,
    vip: ServiceKey,
    svc: &ServiceConfig,
    mut edited: DestConfig,
    udp: &ServiceConfig,
) -> Result<(), String> {
    let e = lb.add_service(svc);
    check(
        "duplicate service → Exists",
        matches!(e, Err(LbError::Exists(_))),
        format!("{e:?}"),
    )?;
    let e = lb.add_dest(&vip, &edited);
    check(
        "duplicate dest → Exists",
        matches!(e, Err(LbError::Exists(_))),
        format!("{e:?}"),
    )?;
    let nokey = ServiceKey::Addr {
        protocol: Protocol::Tcp,
        addr: v4(192, 0, 2, 99),
        port: 1,
    };
    let e = lb.delete_service(&nokey);
    check(
        "unknown service → NotFound",
        matches!(e, Err(LbError::NotFound(_))),
        format!("{e:?}"),
    )?;
    let e = lb.delete_dest(&vip, v4(192, 0, 2, 98), 1);
    check(
        "unknown dest → NotFound",
        matches!(e, Err(LbError::NotFound(_))),
        format!("{e:?}"),
    )?;
    edited.u_threshold = 1;
    edited.l_threshold = 2;
    let e = lb.edit_dest(&vip, &edited);
    check(
        "l > u → Range",
        matches!(e, Err(LbError::Range(_))),
        format!("{e:?}"),
    )?;
    let full = DestConfig {
        method: ForwardMethod::FullNat,
        ..DestConfig::new(v4(192, 168, 80, 14), 8080)
    };
    let e = lb.add_dest(&vip, &full);
    check(
        "FullNat → Unavailable",
        matches!(e, Err(LbError::Unavailable(_))),
        format!("{e:?}"),
    )?;
    let mut sip = ServiceConfig::new(udp.key, Scheduler::Rr);
    sip.pe_name = Some("nosuchpe".into());
    let e = lb.edit_service(&sip);
    check(
        "unknown PE → NoScheduler",
        matches!(e, Err(LbError::NoScheduler(_))),
        format!("{e:?}"),
    )?;
    Ok(())
}

/// Timeouts round trip and print like ipvsadm's; zero, delete and flush leave what they
/// should.
fn timeouts_zero_delete_flush(
    lb: &mut IpvsClient,
    vip: ServiceKey,
    udp: &ServiceConfig,
) -> Result<(), String> {
    let t = Timeouts {
        tcp: 900,
        tcp_fin: 100,
        udp: 200,
    };
    lb.set_timeouts(&t).map_err(|e| e.to_string())?;
    let back = lb.timeouts().map_err(|e| e.to_string())?;
    check("timeouts round trip", back == t, format!("{back:?}"))?;
    let theirs = ipvsadm(&["-L", "--timeout"])?;
    let ours = lvslab_ipvsadm::listing::render_timeouts(&back);
    check(
        "timeout line equals ipvsadm",
        ours == theirs,
        format!("{ours:?} vs {theirs:?}"),
    )?;
    lb.zero(Some(&vip)).map_err(|e| e.to_string())?;
    lb.zero(None).map_err(|e| e.to_string())?;
    lb.delete_dest(&vip, v4(192, 168, 80, 13), 8080)
        .map_err(|e| e.to_string())?;
    lb.delete_service(&udp.key).map_err(|e| e.to_string())?;
    let n = lb.list().map_err(|e| e.to_string())?.len();
    check("delete service", n == 3, n)?;
    lb.flush().map_err(|e| e.to_string())?;
    let n = lb.list().map_err(|e| e.to_string())?.len();
    check("flush", n == 0, n)?;
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => {
            println!("all checks passed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
