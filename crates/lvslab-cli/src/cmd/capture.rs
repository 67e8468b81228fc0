//! `lvslab capture <instance> <node>:<iface>`: watch one capture point of a running instance
//! (workshop use), printing one line per frame and/or writing a pcapng file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use lvslab_netns::capture::{parse_point, CaptureOptions, CaptureSocket, Received};
use lvslab_netns::Netns;
use lvslab_pcap::decode::decode_frame;
use lvslab_pcap::pcapng::{Frame, PacketDirection, PcapngWriter};

use super::require_root;

/// How often the loop looks at Ctrl-C and the time limit while no frame arrives.
const TICK: Duration = Duration::from_millis(100);

/// What `lvslab capture` was asked to do.
pub struct CaptureArgs<'a> {
    pub instance: &'a str,
    pub point: &'a str,
    pub write: Option<&'a Path>,
    pub count: Option<u64>,
    pub seconds: Option<f64>,
    pub quiet: bool,
}

pub fn capture(args: &CaptureArgs<'_>) -> anyhow::Result<ExitCode> {
    require_root("lvslab capture")?;
    let (node, _) = parse_point(args.point)?;
    let limit = match args.seconds {
        Some(s) if !(s.is_finite() && s > 0.0) => {
            bail!("--seconds {s} is not a positive number of seconds")
        }
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    if args.count == Some(0) {
        bail!("--count 0 would capture nothing: give at least 1");
    }
    let ns = open_node(args.instance, node)?;

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("install the Ctrl-C handler")?;
    }

    let opts = CaptureOptions::default();
    let mut socket = CaptureSocket::open(&ns, args.point, 0, &opts)?;
    let mut early = Vec::new();
    socket.prove_armed(std::process::id().into(), opts.arm_timeout, &mut early)?;
    let iface = socket.interface();
    let mut writer = match args.write {
        Some(path) => {
            let file = File::create(path)
                .with_context(|| format!("create capture file {}", path.display()))?;
            let mut w = PcapngWriter::new(BufWriter::new(file))?;
            w.add_interface(&iface)?;
            Some((w, path.to_path_buf()))
        }
        None => None,
    };
    eprintln!(
        "capturing on {} (instance {}); Ctrl-C to stop",
        args.point, args.instance
    );

    let started = Instant::now();
    let mut printer = Printer {
        out: std::io::stdout().lock(),
        quiet: args.quiet,
        first_ts: None,
        seen: 0,
        linktype: iface.linktype,
        point: args.point,
    };
    let mut take = |frame: Frame, writer: &mut Option<(PcapngWriter<BufWriter<File>>, PathBuf)>| {
        printer.frame(&frame);
        if let Some((w, _)) = writer {
            w.write_frame(&frame)?;
        }
        Ok::<_, anyhow::Error>(printer.seen)
    };
    let mut seen = 0;
    for frame in early {
        seen = take(frame, &mut writer)?;
    }
    let done = |seen: u64| {
        stop.load(Ordering::Relaxed)
            || args.count.is_some_and(|c| seen >= c)
            || limit.is_some_and(|l| started.elapsed() >= l)
    };
    while !done(seen) {
        match socket.try_recv()? {
            Some(Received::Frame(frame)) => seen = take(frame, &mut writer)?,
            Some(Received::Marker(_)) => {}
            None => {
                let wait = limit.map_or(TICK, |l| l.saturating_sub(started.elapsed()).min(TICK));
                socket.wait_readable(wait)?;
            }
        }
    }
    let stats = socket.kernel_stats()?;
    if let Some((w, path)) = writer {
        w.finish()?;
        eprintln!("wrote {seen} frames to {}", path.display());
    }
    eprintln!(
        "{seen} frames captured at {}; {} dropped by the kernel (socket buffer full)",
        args.point, stats.drops
    );
    Ok(ExitCode::SUCCESS)
}

struct Printer<'a, W: Write> {
    out: W,
    quiet: bool,
    first_ts: Option<u64>,
    seen: u64,
    linktype: lvslab_pcap::pcapng::LinkType,
    point: &'a str,
}

impl<W: Write> Printer<'_, W> {
    fn frame(&mut self, frame: &Frame) {
        self.seen += 1;
        if self.quiet {
            return;
        }
        let first = *self.first_ts.get_or_insert(frame.ts_ns);
        let rel = frame.ts_ns.saturating_sub(first) as f64 / 1e9;
        let summary = decode_frame(
            self.point,
            self.seen,
            frame.ts_ns,
            self.linktype,
            &frame.data,
        );
        let dir = match frame.direction {
            Some(PacketDirection::Outbound) => "out",
            Some(PacketDirection::Inbound) => "in ",
            None => "   ",
        };
        let csum = if frame.csum_not_ready() {
            " [csum offloaded]"
        } else {
            ""
        };
        // A closed stdout (`| head`) ends the printing, not the capture file.
        if writeln!(
            self.out,
            "{:>6} {rel:>11.6} {dir} {}{csum}",
            self.seen,
            summary.describe()
        )
        .is_err()
        {
            self.quiet = true;
        }
    }
}

fn open_node(instance: &str, node: &str) -> anyhow::Result<Netns> {
    Ok(lvslab_instance::Instance::open(instance)?.node(node)?)
}
