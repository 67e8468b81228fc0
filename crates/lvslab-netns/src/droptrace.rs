//! The kernel's own word on lost packets: the `skb:kfree_skb` tracepoint (each drop with
//! its reason, by name, and the function that dropped it), recorded with the
//! `net:netif_receive_skb` and `net:net_dev_queue` sightings that say on which device an
//! skb was last seen, in a trace instance of this trace's own
//! (`/sys/kernel/tracing/instances/lvslab-<pid>-<n>`): two runs never share one, and the
//! host's global tracing is left as found.
//!
//! The tracepoints carry no namespace: a drop is tied to a lab's hop later, by the
//! device, length and time of the sighting that preceded it (see the harness's
//! diagnosis). Reasons are kept as the kernel names them (`IP_RPFILTER`, `NO_SOCKET`, …),
//! never as numbers, which move between kernel versions.
//!
//! Reading needs root and a mounted tracefs; where either is missing, [`DropTrace::start`]
//! says which, and nothing was changed. On the host lvslab never mounts tracefs itself.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

/// Where tracefs is looked for, in order.
const TRACEFS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];
/// Events recorded: the drops and the sightings that place them.
const EVENTS: [&str; 3] = [
    "skb/kfree_skb",
    "net/netif_receive_skb",
    "net/net_dev_queue",
];
/// Per-CPU buffer of an instance: a trial's ~10k packets make a few 100k events.
const BUFFER_KB: u32 = 16 * 1024;

/// Why drops cannot be traced here (the report says it instead of reasons).
#[derive(Debug, thiserror::Error)]
pub enum DropTraceError {
    #[error("tracing the kernel's drops needs root")]
    NotRoot,
    #[error("tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing); lvslab does not mount it on the host itself")]
    NoTracefs,
    #[error("this kernel has no {event} tracepoint")]
    NoEvent { event: &'static str },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> DropTraceError + 'a {
    move |source| DropTraceError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// One packet the kernel freed as dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelDrop {
    /// Wall-clock time (ns since the Unix epoch), comparable with capture timestamps.
    pub ts_ns: u64,
    /// The skb, as the kernel prints it (hashed, stable within one boot).
    pub skb: String,
    /// The kernel's reason, by name (`IP_RPFILTER`, `NO_SOCKET`, …).
    pub reason: String,
    /// The function that dropped it (`ip_rcv_finish_core`), without offsets.
    pub function: String,
    /// EtherType of the skb (2048 = IPv4).
    pub protocol: u16,
}

/// Which way a sighting saw the skb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SightingKind {
    /// `netif_receive_skb`: received on `dev` (length without the Ethernet header).
    Received,
    /// `net_dev_queue`: queued to send on `dev` (length with the Ethernet header).
    Queued,
}

/// An skb seen on a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sighting {
    pub ts_ns: u64,
    pub skb: String,
    pub dev: String,
    pub len: u32,
    pub kind: SightingKind,
}

/// What a trace recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRecord {
    pub drops: Vec<KernelDrop>,
    pub sightings: Vec<Sighting>,
    /// Events the buffer had no room for (then some drops may be missing).
    pub overruns: u64,
}

/// A running trace; [`DropTrace::stop`] reads it and removes the instance (so does drop).
#[derive(Debug)]
pub struct DropTrace {
    dir: PathBuf,
    /// Wall clock minus the trace clock (monotonic), in ns.
    offset_ns: i128,
    removed: bool,
}

fn tracefs() -> Option<PathBuf> {
    TRACEFS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("instances").is_dir() && p.join("events").is_dir())
}

fn write(path: &Path, text: &str) -> Result<(), DropTraceError> {
    fs::write(path, text).map_err(io_err("write", path))
}

fn now_ns(clock: nix::time::ClockId) -> i128 {
    nix::time::clock_gettime(clock).map_or(0, |t| {
        i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
    })
}

impl DropTrace {
    /// Starts recording the kernel's drops in a trace instance of its own.
    pub fn start() -> Result<DropTrace, DropTraceError> {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        if !nix::unistd::geteuid().is_root() {
            return Err(DropTraceError::NotRoot);
        }
        let root = tracefs().ok_or(DropTraceError::NoTracefs)?;
        for e in EVENTS {
            if !root.join("events").join(e).is_dir() {
                return Err(DropTraceError::NoEvent { event: e });
            }
        }
        let name = format!(
            "lvslab-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let dir = root.join("instances").join(&name);
        fs::create_dir(&dir).map_err(io_err("create trace instance", &dir))?;
        let mut trace = DropTrace {
            dir,
            offset_ns: 0,
            removed: false,
        };
        trace.arm()?;
        Ok(trace)
    }

    fn arm(&mut self) -> Result<(), DropTraceError> {
        let d = self.dir.clone();
        write(&d.join("trace_clock"), "mono")?;
        write(&d.join("buffer_size_kb"), &BUFFER_KB.to_string())?;
        for e in EVENTS {
            write(&d.join("events").join(e).join("enable"), "1")?;
        }
        let mono = now_ns(nix::time::ClockId::CLOCK_MONOTONIC);
        let real = now_ns(nix::time::ClockId::CLOCK_REALTIME);
        self.offset_ns = real - mono;
        write(&d.join("tracing_on"), "1")
    }

    /// Stops recording, reads what was recorded and removes the instance.
    pub fn stop(mut self) -> Result<TraceRecord, DropTraceError> {
        let d = self.dir.clone();
        write(&d.join("tracing_on"), "0")?;
        let text = fs::read_to_string(d.join("trace")).map_err(io_err("read", &d.join("trace")))?;
        let overruns = read_overruns(&d);
        let record = parse_trace(&text, self.offset_ns, overruns);
        self.remove()?;
        Ok(record)
    }

    fn remove(&mut self) -> Result<(), DropTraceError> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        // Events must be off before the instance can go.
        for e in EVENTS {
            let _ = fs::write(self.dir.join("events").join(e).join("enable"), "0");
        }
        fs::remove_dir(&self.dir).map_err(io_err("remove trace instance", &self.dir))
    }
}

impl Drop for DropTrace {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            tracing::warn!("{e}");
        }
    }
}

/// Sum of the `overrun:` lines of every CPU's `stats`.
fn read_overruns(dir: &Path) -> u64 {
    let Ok(cpus) = fs::read_dir(dir.join("per_cpu")) else {
        return 0;
    };
    cpus.flatten()
        .filter_map(|c| fs::read_to_string(c.path().join("stats")).ok())
        .flat_map(|s| {
            s.lines()
                .filter_map(|l| l.strip_prefix("overrun:"))
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// `key=value` of a trace line's payload.
fn field<'a>(payload: &'a str, key: &str) -> Option<&'a str> {
    payload
        .split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// Parses the text of a trace instance (lines like `sleep-25894 [001] ..s1.
/// 10805.783321: kfree_skb: skbaddr=… protocol=2048 location=__udp4_lib_rcv+0x4b7/0xdc0
/// reason: NO_SOCKET`); `offset_ns` turns the trace clock into wall-clock time.
pub fn parse_trace(text: &str, offset_ns: i128, overruns: u64) -> TraceRecord {
    let mut out = TraceRecord {
        overruns,
        ..TraceRecord::default()
    };
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        // The timestamp is the word before the first ": " that ends in a colon.
        let Some((head, rest)) = line.split_once(": ") else {
            continue;
        };
        let Some(ts) = head.split_whitespace().last() else {
            continue;
        };
        let Ok(secs) = ts.parse::<f64>() else {
            continue;
        };
        let ts_ns = u64::try_from((secs * 1e9) as i128 + offset_ns).unwrap_or(0);
        let Some((event, payload)) = rest.split_once(": ") else {
            continue;
        };
        match event {
            "kfree_skb" => {
                let reason = payload
                    .rsplit_once("reason: ")
                    .map_or("", |(_, r)| r.trim())
                    .to_string();
                let function = field(payload, "location")
                    .map(|l| l.split('+').next().unwrap_or(l).to_string())
                    .unwrap_or_default();
                out.drops.push(KernelDrop {
                    ts_ns,
                    skb: field(payload, "skbaddr").unwrap_or_default().to_string(),
                    reason,
                    function,
                    protocol: field(payload, "protocol")
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(0),
                });
            }
            "netif_receive_skb" | "net_dev_queue" => {
                let (Some(dev), Some(skb), Some(len)) = (
                    field(payload, "dev"),
                    field(payload, "skbaddr"),
                    field(payload, "len").and_then(|l| l.parse().ok()),
                ) else {
                    continue;
                };
                out.sightings.push(Sighting {
                    ts_ns,
                    skb: skb.to_string(),
                    dev: dev.to_string(),
                    len,
                    kind: if event == "net_dev_queue" {
                        SightingKind::Queued
                    } else {
                        SightingKind::Received
                    },
                });
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# tracer: nop
           sleep-25894   [001] b.... 10805.783286: net_dev_queue: dev=lo skbaddr=0000000027e879b3 len=48
           sleep-25894   [001] ..s1. 10805.783299: netif_receive_skb: dev=lo skbaddr=0000000027e879b3 len=34
           sleep-25894   [001] ..s1. 10805.783321: kfree_skb: skbaddr=0000000027e879b3 rx_sk=0000000000000000 protocol=2048 location=__udp4_lib_rcv+0x4b7/0xdc0 reason: NO_SOCKET
          <idle>-0       [000] ..s2. 10805.900000: kfree_skb: skbaddr=00000000aa rx_sk=0000000000000000 protocol=2048 location=ip_rcv_finish_core+0x1/0x2 reason: IP_RPFILTER
";

    #[test]
    fn trace_lines_become_drops_and_sightings_on_the_wall_clock() {
        let offset = 1_700_000_000_000_000_000i128;
        let r = parse_trace(SAMPLE, offset, 3);
        assert_eq!(r.overruns, 3);
        assert_eq!(r.sightings.len(), 2);
        assert_eq!(r.sightings[0].kind, SightingKind::Queued);
        assert_eq!(r.sightings[1].dev, "lo");
        assert_eq!(r.sightings[1].len, 34);
        assert_eq!(r.drops.len(), 2);
        let d = &r.drops[0];
        assert_eq!(d.reason, "NO_SOCKET");
        assert_eq!(d.function, "__udp4_lib_rcv");
        assert_eq!(d.protocol, 2048);
        assert_eq!(d.skb, "0000000027e879b3");
        // 10805.783321 s of the trace clock, moved onto the wall clock (µs precision).
        let want = 10_805_783_321_000i128 + offset;
        assert!((i128::from(d.ts_ns) - want).abs() < 1_000, "{}", d.ts_ns);
        assert_eq!(r.drops[1].reason, "IP_RPFILTER");
        assert_eq!(r.drops[1].function, "ip_rcv_finish_core");
    }

    #[test]
    fn lines_that_are_not_events_are_skipped() {
        let r = parse_trace("garbage\n#comment\nx: y\n", 0, 0);
        assert_eq!(r, TraceRecord::default());
    }
}
