//! Many capture points read by one background thread, from arming to the final drain.

use std::collections::HashSet;
use std::os::fd::{AsFd, OwnedFd};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use lvslab_pcap::pcapng::{Capture, Frame, Interface};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::socket::{now_ns, CaptureSocket, Received};
use super::{parse_point, CaptureError, CaptureOptions, Captured, PointStats, Result};
use crate::ns::Netns;

/// At most this many frames are read from one socket per wake-up, so one busy point
/// cannot starve the others.
const READ_BATCH: usize = 4096;

/// After a wake-up that found frames, the capture thread waits this long before polling
/// again, so frames are read in batches instead of costing a thread wake-up each (which
/// slows the traffic being captured on a small machine). The socket buffer holds far more
/// than this many milliseconds of traffic.
const BATCH_DELAY: Duration = Duration::from_millis(1);

/// Safety bound for the final drain of one socket (traffic should have stopped by then).
const FINAL_DRAIN_LIMIT: usize = 2_000_000;
/// A nonce no other capture running now is likely to use.
fn fresh_nonce(index: u32) -> u64 {
    let mut x = now_ns() ^ (u64::from(std::process::id()) << 32) ^ u64::from(index);
    // splitmix64 finaliser: spreads the bits so nearby inputs differ everywhere.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// State of one point inside the capture thread.
struct PointState {
    socket: CaptureSocket,
    frames: Vec<Frame>,
    over_cap: u64,
    markers: u64,
}

impl PointState {
    /// Reads up to `limit` queued packets; `true` if the socket may have more.
    fn read(&mut self, limit: usize, cap: usize) -> Result<bool> {
        for _ in 0..limit {
            match self.socket.try_recv()? {
                None => return Ok(false),
                Some(Received::Marker(_)) => self.markers += 1,
                Some(Received::Frame(f)) => {
                    if self.frames.len() < cap {
                        self.frames.push(f);
                    } else {
                        self.over_cap += 1;
                    }
                }
            }
        }
        Ok(true)
    }
}

impl std::fmt::Debug for PointState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PointState({})", self.socket.point)
    }
}

/// Reads every point until woken through `wake`, then reads what is still queued.
fn capture_loop(mut points: Vec<PointState>, wake: OwnedFd, cap: usize) -> Result<Vec<PointState>> {
    loop {
        let (ready, woken) = {
            let mut fds: Vec<PollFd<'_>> = points
                .iter()
                .map(|p| PollFd::new(p.socket.socket.as_fd(), PollFlags::POLLIN))
                .collect();
            fds.push(PollFd::new(wake.as_fd(), PollFlags::POLLIN));
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => {
                    return Err(CaptureError::Thread {
                        detail: format!("poll: {e}"),
                    })
                }
            }
            let any = PollFlags::POLLIN | PollFlags::POLLERR | PollFlags::POLLHUP;
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| r.intersects(any)))
                .collect();
            let woken = ready.last().copied().unwrap_or(false);
            (ready, woken)
        };
        for (p, _) in points.iter_mut().zip(&ready).filter(|(_, r)| **r) {
            p.read(READ_BATCH, cap)?;
        }
        if woken {
            for p in &mut points {
                p.read(FINAL_DRAIN_LIMIT, cap)?;
            }
            return Ok(points);
        }
        thread::sleep(BATCH_DELAY);
    }
}

/// A running capture over several points; see the module docs.
#[derive(Debug)]
pub struct CaptureSet {
    interfaces: Vec<Interface>,
    worker: Option<JoinHandle<Result<Vec<PointState>>>>,
    wake: Option<OwnedFd>,
}

impl CaptureSet {
    /// Opens and arms every point with [`CaptureOptions::default`].
    pub fn arm(points: &[(&Netns, String)]) -> Result<CaptureSet> {
        Self::arm_with(points, &CaptureOptions::default())
    }

    /// Opens one socket per point inside its namespace, proves each receives (marker
    /// frame), then starts the background thread that reads them all until
    /// [`CaptureSet::drain`].
    pub fn arm_with(points: &[(&Netns, String)], opts: &CaptureOptions) -> Result<CaptureSet> {
        let mut seen = HashSet::new();
        for (_, point) in points {
            parse_point(point)?;
            if !seen.insert(point.as_str()) {
                return Err(CaptureError::BadPoint {
                    point: point.clone(),
                    why: "given twice".into(),
                });
            }
        }
        let mut states = Vec::with_capacity(points.len());
        for (index, (ns, point)) in points.iter().enumerate() {
            let index = u32::try_from(index).map_err(|_| CaptureError::BadPoint {
                point: point.clone(),
                why: "too many capture points".into(),
            })?;
            states.push(PointState {
                socket: CaptureSocket::open(ns, point, index, opts)?,
                frames: Vec::new(),
                over_cap: 0,
                markers: 0,
            });
        }
        let cap = opts.max_frames_per_point;
        for state in &mut states {
            let nonce = fresh_nonce(state.socket.index);
            let mut early = Vec::new();
            state.markers += state
                .socket
                .prove_armed(nonce, opts.arm_timeout, &mut early)?;
            for f in early {
                if state.frames.len() < cap {
                    state.frames.push(f);
                } else {
                    state.over_cap += 1;
                }
            }
        }
        let interfaces = states.iter().map(|s| s.socket.interface()).collect();
        let (wake_rx, wake_tx) = nix::unistd::pipe().map_err(|e| CaptureError::Thread {
            detail: format!("pipe: {e}"),
        })?;
        let worker = thread::Builder::new()
            .name("lvslab capture".into())
            .spawn(move || capture_loop(states, wake_rx, cap))
            .map_err(|e| CaptureError::Thread {
                detail: format!("spawn: {e}"),
            })?;
        Ok(CaptureSet {
            interfaces,
            worker: Some(worker),
            wake: Some(wake_tx),
        })
    }

    /// The points' interface descriptions, in the order given to [`CaptureSet::arm`].
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    fn stop(&mut self) -> Result<Vec<PointState>> {
        if let Some(wake) = self.wake.take() {
            nix::unistd::write(&wake, b"x").map_err(|e| CaptureError::Thread {
                detail: format!("wake capture thread: {e}"),
            })?;
        }
        let worker = self.worker.take().ok_or_else(|| CaptureError::Thread {
            detail: "already drained".into(),
        })?;
        worker.join().map_err(|_| CaptureError::Thread {
            detail: "panicked".into(),
        })?
    }

    /// Waits `settle` (for frames still in flight), stops the thread after it has read
    /// everything still queued, and returns the capture with per-point counters.
    pub fn drain(mut self, settle: Duration) -> Result<Captured> {
        thread::sleep(settle);
        let points = self.stop()?;
        let mut stats = Vec::with_capacity(points.len());
        let mut frames = Vec::new();
        for p in points {
            let kernel = p.socket.kernel_stats()?;
            stats.push(PointStats {
                point: p.socket.point.clone(),
                packets: p.frames.len() as u64,
                drops: u64::from(kernel.drops),
                over_cap: p.over_cap,
                kernel_packets: u64::from(kernel.packets),
                markers: p.markers,
            });
            frames.extend(p.frames);
        }
        // Stable: frames of one point with equal timestamps keep their arrival order.
        frames.sort_by_key(|f| (f.ts_ns, f.interface));
        Ok(Captured {
            capture: Capture {
                interfaces: std::mem::take(&mut self.interfaces),
                frames,
            },
            stats,
        })
    }
}

impl Drop for CaptureSet {
    fn drop(&mut self) {
        // Not drained: stop the thread anyway so no reader outlives the set.
        if self.worker.is_some() {
            let _ = self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_differ_between_points() {
        assert_ne!(fresh_nonce(0), fresh_nonce(1));
    }
}
