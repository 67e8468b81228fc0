//! pcapng write and read speed: lvslab's codec on `pcap-file` against the hand-written codec
//! it replaced (`pcapng_baseline.rs`). No root. Plain `main`; results on stdout.
//!
//! Run: `cargo bench -p lvslab-pcap --bench pcapng` (options: `-- --frames N --rounds R`,
//! default 1,000,000 frames × 5 rounds).
//!
//! One synthetic capture shaped like a trial's: 4 capture points, frame sizes cycling
//! 54/66/74/154/590/1514 bytes (mean 409), every frame with a direction (`epb_flags`),
//! every 50th with a checksum-not-ready comment. Write = encode the capture into a
//! `Vec<u8>`; read = decode those bytes into a `Capture`. Before timing, both sides must
//! write the same bytes and read them back to the capture they started from, so they do
//! the same work.
//!
//! Each timed operation runs once in a fresh process (this binary re-run with `--child`):
//! with a million frames the time is mostly allocation and copying, and in one long-lived
//! process whichever side runs after another pays for the allocator's tidying of what the
//! other freed. Rounds alternate the sides' order. Reported per side and operation: the
//! median wall time (frames/s and MB/s of file from it) and the median CPU time of the
//! timing thread (user + system, `/proc/thread-self/stat`, 10 ms ticks), which other work
//! on the machine moves much less; and new ÷ old of both (above 1 = new is slower).

#[allow(dead_code)]
mod pcapng_baseline;

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use lvslab_pcap::pcapng::CSUM_NOT_READY_COMMENT;
use lvslab_pcap::{Capture, Frame, Interface, PacketDirection};

const SIZES: [usize; 6] = [54, 66, 74, 154, 590, 1514];
const SIDES: [&str; 2] = ["new", "old"];
const OPS: [&str; 2] = ["write", "read"];

fn capture(frames: usize) -> Capture {
    let interfaces = ["client:eth0", "director:eth0", "director:eth1", "rs1:eth0"]
        .into_iter()
        .map(Interface::ethernet)
        .collect();
    let frames = (0..frames)
        .map(|i| {
            let size = SIZES[i % SIZES.len()];
            let data = (0..size).map(|b| (b + i) as u8).collect();
            let mut f = Frame::new(
                (i % 4) as u32,
                1_700_000_000_000_000_000 + i as u64 * 1_337,
                data,
            );
            f.direction = Some(if i % 2 == 0 {
                PacketDirection::Inbound
            } else {
                PacketDirection::Outbound
            });
            if i % 50 == 0 {
                f.comments.push(CSUM_NOT_READY_COMMENT.into());
            }
            f
        })
        .collect();
    Capture { interfaces, frames }
}

fn encode(side: &str, c: &Capture) -> Vec<u8> {
    match side {
        "new" => c.to_pcapng(),
        _ => pcapng_baseline::to_pcapng(c),
    }
    .expect("encode")
}

fn decode(side: &str, b: &[u8]) -> Capture {
    match side {
        "new" => Capture::from_pcapng(b),
        _ => pcapng_baseline::read_pcapng(b),
    }
    .expect("decode")
}

fn arg<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).map(String::as_str)
}

/// User + system CPU time of this thread so far.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("/proc/thread-self/stat");
    // After the command name: state is field 3, utime 14, stime 15 (USER_HZ = 100 ticks).
    let rest: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, r)| r)
        .split_whitespace()
        .collect();
    let ticks = rest[11].parse::<u64>().expect("utime") + rest[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

/// In a child: build the input, time one operation, print "wall_ns cpu_ns".
fn child(frames: usize, side: &str, op: &str) {
    let cap = capture(frames);
    let bytes = if op == "read" {
        encode("new", &cap)
    } else {
        Vec::new()
    };
    let (start, cpu) = (Instant::now(), thread_cpu());
    if op == "write" {
        black_box(encode(side, black_box(&cap)));
    } else {
        black_box(decode(side, black_box(&bytes)));
    }
    let (wall, cpu) = (start.elapsed(), thread_cpu() - cpu);
    println!("{} {}", wall.as_nanos(), cpu.as_nanos());
}

fn run_child(frames: usize, side: &str, op: &str) -> (Duration, Duration) {
    let exe = std::env::current_exe().expect("own path");
    let out = Command::new(exe)
        .args(["--frames", &frames.to_string(), "--child", side, op])
        .output()
        .expect("run the bench's child");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child {side} {op}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ns: Vec<u64> = text
        .split_whitespace()
        .map(|v| v.parse().expect("ns"))
        .collect();
    (Duration::from_nanos(ns[0]), Duration::from_nanos(ns[1]))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let frames: usize = arg(&args, "--frames").map_or(1_000_000, |v| v.parse().expect("N"));
    let rounds: usize = arg(&args, "--rounds").map_or(5, |v| v.parse().expect("R"));
    if let Some(i) = args.iter().position(|a| a == "--child") {
        return child(frames, &args[i + 1], &args[i + 2]);
    }

    let cap = capture(frames);
    let bytes = encode("new", &cap);
    assert!(
        bytes == encode("old", &cap),
        "the two writers must write the same file"
    );
    for side in SIDES {
        assert!(decode(side, &bytes) == cap, "{side} reader: round trip");
    }
    let mb = bytes.len() as f64 / 1e6;
    drop((cap, bytes));
    println!(
        "pcapng codec, {frames} frames, {mb:.1} MB file, {} rounds, each operation in a fresh process",
        rounds.max(1)
    );

    // times[side][op] = [(wall, cpu)] over rounds
    let mut times = vec![vec![Vec::new(); OPS.len()]; SIDES.len()];
    for round in 0..rounds.max(1) {
        for (o, op) in OPS.iter().enumerate() {
            for k in 0..SIDES.len() {
                let s = (k + round) % SIDES.len();
                times[s][o].push(run_child(frames, SIDES[s], op));
            }
        }
    }

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{:<6} {:<5} {:>9} {:>8} {:>11} {:>6}",
        "codec", "op", "wall ms", "CPU ms", "frames/s", "MB/s"
    );
    // medians[side][op] = (wall, cpu)
    let medians: Vec<Vec<(Duration, Duration)>> = times
        .iter()
        .map(|per_op| {
            per_op
                .iter()
                .map(|t| {
                    (
                        median(t.iter().map(|x| x.0).collect()),
                        median(t.iter().map(|x| x.1).collect()),
                    )
                })
                .collect()
        })
        .collect();
    for (o, op) in OPS.iter().enumerate() {
        for (s, side) in SIDES.iter().enumerate() {
            let (wall, cpu) = medians[s][o];
            println!(
                "{side:<6} {op:<5} {:>9.1} {:>8.0} {:>11.0} {:>6.0}",
                ms(wall),
                ms(cpu),
                frames as f64 / wall.as_secs_f64(),
                mb / wall.as_secs_f64()
            );
        }
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        println!(
            "new ÷ old {op}: {:.2}× wall, {:.2}× CPU",
            ratio(medians[0][o].0, medians[1][o].0),
            ratio(medians[0][o].1, medians[1][o].1)
        );
    }
}
