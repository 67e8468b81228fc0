//! The hash test vectors of the IPVS behaviour notes (`docs/ipvs-behaviour.md`, "Hash
//! primitives"). They were derived from the kernel's rules by re-implementation, not captured
//! from a live kernel: kernel confirmation is pending (VM differential test).

use std::net::IpAddr;

use lvslab_dataplane::sched::dh::{Dh, DH_TAB_SIZE};
use lvslab_dataplane::sched::hash::{addr_fold, hash_32, hsiphash_u32};
use lvslab_dataplane::sched::lblc::lblc_bucket;
use lvslab_dataplane::sched::mh::{permutation, Mh, MH_KEY1, MH_TAB_SIZE};
use lvslab_dataplane::sched::sh::{sh_hashkey, Sh, SH_TAB_SIZE};
use lvslab_dataplane::sched::{DestId, DestView, Profile, SchedInput, SchedPacket};
use lvslab_spec::lb::{Protocol, ServiceFlags};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address literal")
}

fn dv(id: u32, addr: &str, port: u16, weight: i32) -> DestView {
    DestView {
        id: DestId(id),
        addr: ip(addr),
        port,
        weight,
        last_weight: weight,
        active: 0,
        overhead: 0,
        overloaded: false,
        available: true,
    }
}

fn pkt(src: &str, sport: u16) -> SchedPacket {
    SchedPacket {
        protocol: Protocol::Tcp,
        saddr: ip(src),
        sport,
        daddr: ip("192.0.2.10"),
        dport: 80,
    }
}

fn input<'a>(dests: &'a [DestView], p: &'a SchedPacket, flags: ServiceFlags) -> SchedInput<'a> {
    SchedInput {
        dests,
        trashed: &[],
        pkt: p,
        flags,
        now_ms: 0,
        profile: Profile::P2026,
        cache_expiration_ms: 86_400_000,
    }
}

#[test]
fn hash32_dh_sh_buckets_of_client_addresses() {
    assert_eq!(hash_32(addr_fold(ip("10.0.0.1")), 8), 39);
    assert_eq!(hash_32(addr_fold(ip("10.0.0.2")), 8), 137);
    assert_eq!(hash_32(addr_fold(ip("10.0.0.3")), 8), 235);
}

#[test]
fn hash32_dh_bucket_of_selftest_vip() {
    assert_eq!(hash_32(addr_fold(ip("207.175.44.110")), 8), 174);
}

#[test]
fn sh_bucket_with_source_port() {
    assert_eq!(sh_hashkey(ip("10.0.0.1"), 40000, 0), 203);
}

#[test]
fn sh_fallback_probe_order_starts_at_twice_ihash() {
    let ihash = sh_hashkey(ip("10.0.0.1"), 0, 0);
    assert_eq!(ihash, 39);
    let probes: Vec<usize> = (0..4u32)
        .map(|off| sh_hashkey(ip("10.0.0.1"), 0, (off + ihash as u32) % 256))
        .collect();
    assert_eq!(probes, vec![78, 79, 80, 81]);
}

#[test]
fn lblc_bucket_of_client_address() {
    assert_eq!(lblc_bucket(ip("10.0.0.1")), 159);
}

#[test]
fn mh_hsiphash_k1_of_zero() {
    assert_eq!(hsiphash_u32(MH_KEY1, 0), 0x1d5a_77c2);
}

#[test]
fn mh_offsets_and_skips_of_three_servers() {
    assert_eq!(permutation(ip("10.0.0.11"), 80), (4032, 1541));
    assert_eq!(permutation(ip("10.0.0.12"), 80), (870, 874));
    assert_eq!(permutation(ip("10.0.0.13"), 80), (2586, 2286));
}

/// List [.13, .12, .11] (added .11, .12, .13), weights as given.
fn mh_three(w11: i32, w12: i32, w13: i32) -> (Vec<DestView>, Mh) {
    let dests = vec![
        dv(13, "10.0.0.13", 80, w13),
        dv(12, "10.0.0.12", 80, w12),
        dv(11, "10.0.0.11", 80, w11),
    ];
    let mh = Mh::build(&dests).expect("three dests fit");
    (dests, mh)
}

fn slot_counts(mh: &Mh, ids: &[u32]) -> Vec<usize> {
    ids.iter()
        .map(|&id| {
            (0..MH_TAB_SIZE)
                .filter(|&s| mh.slot(s) == Some(DestId(id)))
                .count()
        })
        .collect()
}

#[test]
fn mh_equal_weights_slot_counts() {
    let (_, mh) = mh_three(1, 1, 1);
    assert_eq!(slot_counts(&mh, &[13, 12, 11]), vec![1365, 1364, 1364]);
}

#[test]
fn mh_equal_weights_first_twelve_slots() {
    let (_, mh) = mh_three(1, 1, 1);
    let first: Vec<u32> = (0..12)
        .map(|s| mh.slot(s).expect("table is full").0)
        .collect();
    assert_eq!(first, vec![12, 13, 13, 11, 12, 12, 11, 11, 13, 12, 12, 11]);
}

#[test]
fn mh_lookups_of_three_clients() {
    let (dests, mh) = mh_three(1, 1, 1);
    let flags = ServiceFlags::default();
    for (client, want) in [("192.168.0.1", 12), ("192.168.0.2", 12), ("10.1.2.3", 11)] {
        let p = pkt(client, 5555);
        assert_eq!(
            mh.schedule(&input(&dests, &p, flags)),
            Some(DestId(want)),
            "{client}"
        );
    }
}

#[test]
fn mh_weights_3_2_1_slot_counts() {
    let (_, mh) = mh_three(1, 2, 3);
    assert_eq!(slot_counts(&mh, &[13, 12, 11]), vec![2047, 1364, 682]);
}

#[test]
fn mh_weights_1000_and_1_shift_and_counts() {
    // 63 slots per sweep, heavy server first in the list: 64 full sweeps (4032 slots) and the
    // heavy one takes the remaining 61.
    let dests = vec![dv(1, "10.0.0.11", 80, 1000), dv(2, "10.0.0.12", 80, 1)];
    let mh = Mh::build(&dests).expect("fits");
    assert_eq!(mh.shift(), 4);
    assert_eq!(slot_counts(&mh, &[1, 2]), vec![4029, 64]);
}

#[test]
fn sh_weighted_bucket_counts() {
    let dests = vec![
        dv(3, "10.0.0.3", 80, 1),
        dv(2, "10.0.0.2", 80, 2),
        dv(1, "10.0.0.1", 80, 3),
    ];
    let sh = Sh::build(&dests);
    let count = |id| {
        (0..SH_TAB_SIZE)
            .filter(|&b| sh.bucket(b) == Some(DestId(id)))
            .count()
    };
    assert_eq!((count(3), count(2), count(1)), (43, 86, 127));
    let head: Vec<u32> = (0..6).map(|b| sh.bucket(b).expect("full").0).collect();
    assert_eq!(head, vec![3, 2, 2, 1, 1, 1]);
}

#[test]
fn sh_heavy_first_server_starves_the_rest() {
    let dests = vec![dv(1, "10.0.0.1", 80, 300), dv(2, "10.0.0.2", 80, 1)];
    let sh = Sh::build(&dests);
    let count = |id| {
        (0..SH_TAB_SIZE)
            .filter(|&b| sh.bucket(b) == Some(DestId(id)))
            .count()
    };
    assert_eq!((count(1), count(2)), (256, 0));
}

#[test]
fn dh_buckets_cycle_through_list() {
    let dests = vec![
        dv(3, "10.0.0.3", 80, 1),
        dv(2, "10.0.0.2", 80, 5),
        dv(1, "10.0.0.1", 80, 1),
    ];
    let dh = Dh::build(&dests);
    assert_eq!(dh.bucket(0), Some(DestId(3)));
    assert_eq!(dh.bucket(1), Some(DestId(2)));
    assert_eq!(dh.bucket(174), Some(DestId(3)), "174 mod 3 = 0");
    assert_eq!(dh.bucket(DH_TAB_SIZE - 1), Some(DestId(3)), "255 mod 3 = 0");
}
