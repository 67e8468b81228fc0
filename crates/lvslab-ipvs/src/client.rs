//! The socket side: one generic netlink socket, request/reply exchange, and the
//! [`LoadBalancer`] implementation.

use std::net::IpAddr;

use lvslab_spec::lb::{
    DestConfig, DestStatus, LbError, LbInfo, LoadBalancer, ServiceConfig, ServiceKey,
    ServiceStatus, Timeouts,
};
use neli::consts::socket::{Msg, NlFamily};
use neli::socket::NlSocket;
use neli::utils::Groups;

use crate::codec::{self, Request};
use crate::error::{errno, to_lb_error, Error, Target};
use crate::wire::{split_messages, GenlMessage, Reply};

/// Large enough for one kernel dump datagram (the kernel sizes them ≤ 32 KiB).
const RECV_BUF_LEN: usize = 64 * 1024;

/// A data message copied out of the receive buffer.
#[derive(Debug, Clone)]
struct OwnedGenl {
    cmd: u8,
    version: u8,
    attrs: Vec<u8>,
}

impl OwnedGenl {
    fn view(&self) -> GenlMessage<'_> {
        GenlMessage {
            cmd: self.cmd,
            version: self.version,
            attrs: &self.attrs,
        }
    }
}

/// A client of the kernel's IPVS over generic netlink.
///
/// IPVS state is per network namespace, and a netlink socket stays bound to the namespace
/// it was created in. [`IpvsClient::connect`] creates the socket in the calling thread's
/// current namespace, so: call it on a thread that has entered the director's namespace
/// (e.g. inside an `NsThread` closure), then use or move the client anywhere — every
/// request acts on that namespace's IPVS. Never `setns` a shared worker thread for this.
///
/// Every request is sent the way ipvsadm 1.31 sends it (complete service and destination
/// nests with ipvsadm's defaults, `NLM_F_ACK` on everything).
///
/// Measured on 6.12: in a namespace that has no address yet (not even `lo` up) the IPv4
/// local routing table does not exist, and the kernel rejects every IPv4 destination with
/// `EINVAL`; bring `lo` up (or configure the lab) before adding destinations.
pub struct IpvsClient {
    sock: NlSocket,
    family: u16,
    seq: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for IpvsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpvsClient")
            .field("family", &self.family)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

fn io_err(op: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        op: op.to_string(),
        source,
    }
}

impl IpvsClient {
    /// Opens a generic netlink socket in the current thread's network namespace and
    /// resolves the "IPVS" family — the capability probe: a kernel without IPVS (no
    /// `ip_vs` module loaded or built) yields [`Error::Unavailable`].
    pub fn connect() -> Result<Self, Error> {
        let op = "open generic netlink socket for IPVS";
        let sock =
            NlSocket::connect(NlFamily::Generic, None, Groups::empty()).map_err(io_err(op))?;
        let mut client = IpvsClient {
            sock,
            family: 0,
            seq: 0,
            buf: vec![0; RECV_BUF_LEN],
        };
        let seq = client.next_seq();
        let msg = codec::resolve_family_message(seq);
        let replies =
            match client.exchange("resolve generic netlink family \"IPVS\"", &msg, seq, false) {
                Ok(r) => r,
                Err(Error::Kernel { errno: e, .. }) if e == errno::ENOENT => {
                    return Err(Error::Unavailable(
                        "the generic netlink family \"IPVS\" does not exist: this kernel has no \
                     IPVS (CONFIG_IP_VS unset or the ip_vs module not loaded). The project's \
                     host kernel has no IPVS: kernel IPVS trials run inside the lvslab-vm VM guest."
                            .into(),
                    ))
                }
                Err(e) => return Err(e),
            };
        let first = replies.first().ok_or_else(|| Error::Decode {
            op: "resolve generic netlink family \"IPVS\"".into(),
            source: codec::DecodeError::Missing {
                object: "controller reply",
                attr: "CTRL_ATTR_FAMILY_ID",
            },
        })?;
        client.family = codec::parse_family_id(&first.view()).map_err(|source| Error::Decode {
            op: "resolve generic netlink family \"IPVS\"".into(),
            source,
        })?;
        tracing::debug!(
            family = client.family,
            "resolved IPVS generic netlink family"
        );
        Ok(client)
    }

    /// The numeric generic netlink family id of "IPVS" in this kernel.
    pub fn family_id(&self) -> u16 {
        self.family
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one message and collects data replies until the ACK (or DONE for dumps).
    fn exchange(
        &mut self,
        op: &str,
        msg: &[u8],
        seq: u32,
        dump: bool,
    ) -> Result<Vec<OwnedGenl>, Error> {
        self.sock.send(msg, Msg::empty()).map_err(io_err(op))?;
        let mut out = Vec::new();
        loop {
            let (n, _) = self
                .sock
                .recv(&mut self.buf[..], Msg::empty())
                .map_err(io_err(op))?;
            let msgs =
                split_messages(&self.buf[..n.min(self.buf.len())]).map_err(|e| Error::Decode {
                    op: op.to_string(),
                    source: e.into(),
                })?;
            for m in msgs {
                if m.seq != seq {
                    tracing::trace!(
                        seq = m.seq,
                        expected = seq,
                        "skipping stale netlink message"
                    );
                    continue;
                }
                match m.reply().map_err(|e| Error::Decode {
                    op: op.to_string(),
                    source: e.into(),
                })? {
                    Reply::Data(g) => out.push(OwnedGenl {
                        cmd: g.cmd,
                        version: g.version,
                        attrs: g.attrs.to_vec(),
                    }),
                    Reply::Error(errno) => {
                        return Err(Error::Kernel {
                            op: op.to_string(),
                            errno,
                        })
                    }
                    Reply::Ack if !dump => return Ok(out),
                    Reply::Done if dump => return Ok(out),
                    // An ACK after a dump's DONE (or a DONE on a doit) carries nothing.
                    Reply::Ack | Reply::Done => return Ok(out),
                }
            }
        }
    }

    fn request(&mut self, op: &str, req: &Request) -> Result<Vec<OwnedGenl>, Error> {
        let seq = self.next_seq();
        let msg = req.to_message(self.family, seq);
        tracing::debug!(op, cmd = ?req.cmd, dump = req.dump, len = msg.len(), "IPVS request");
        self.exchange(op, &msg, seq, req.dump)
    }

    fn encoded(op: &str, r: Result<Request, codec::EncodeError>) -> Result<Request, Error> {
        r.map_err(|source| Error::Encode {
            op: op.to_string(),
            source,
        })
    }

    fn decode<T>(op: &str, r: Result<T, codec::DecodeError>) -> Result<T, Error> {
        r.map_err(|source| Error::Decode {
            op: op.to_string(),
            source,
        })
    }

    /// `IPVS_CMD_GET_INFO`: version and connection table size.
    pub fn get_info(&mut self) -> Result<LbInfo, Error> {
        let op = "get IPVS info";
        let replies = self.request(op, &Request::get_info())?;
        let first = replies.first().ok_or_else(|| Error::Decode {
            op: op.into(),
            source: codec::DecodeError::Missing {
                object: "GET_INFO reply",
                attr: "message",
            },
        })?;
        Self::decode(op, codec::parse_info_reply(&first.view()))
    }

    /// `ipvsadm -A`.
    pub fn new_service(&mut self, svc: &ServiceConfig) -> Result<(), Error> {
        let op = format!("add service {}", svc.key);
        let req = Self::encoded(&op, Request::new_service(svc))?;
        self.request(&op, &req).map(drop)
    }

    /// `ipvsadm -E`.
    pub fn set_service(&mut self, svc: &ServiceConfig) -> Result<(), Error> {
        let op = format!("edit service {}", svc.key);
        let req = Self::encoded(&op, Request::set_service(svc))?;
        self.request(&op, &req).map(drop)
    }

    /// `ipvsadm -D`.
    pub fn del_service(&mut self, key: &ServiceKey) -> Result<(), Error> {
        let op = format!("delete service {key}");
        let req = Self::encoded(&op, Request::del_service(key))?;
        self.request(&op, &req).map(drop)
    }

    /// `ipvsadm -a` (the service nest carries ipvsadm's defaults besides the key).
    pub fn new_dest(&mut self, key: &ServiceKey, dest: &DestConfig) -> Result<(), Error> {
        let op = format!(
            "add destination {} to service {key}",
            codec::dest_name(dest.addr, dest.port)
        );
        let req = Self::encoded(&op, Request::new_dest(&codec::key_only_service(key), dest))?;
        self.request(&op, &req).map(drop)
    }

    /// `ipvsadm -e`.
    pub fn set_dest(&mut self, key: &ServiceKey, dest: &DestConfig) -> Result<(), Error> {
        let op = format!(
            "edit destination {} of service {key}",
            codec::dest_name(dest.addr, dest.port)
        );
        let req = Self::encoded(&op, Request::set_dest(&codec::key_only_service(key), dest))?;
        self.request(&op, &req).map(drop)
    }

    /// `ipvsadm -d`.
    pub fn del_dest(&mut self, key: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), Error> {
        let op = format!(
            "delete destination {} of service {key}",
            codec::dest_name(addr, port)
        );
        let req = Self::encoded(
            &op,
            Request::del_dest(&codec::key_only_service(key), addr, port),
        )?;
        self.request(&op, &req).map(drop)
    }

    /// GET_SERVICE dump: every service of the namespace, in kernel hash order, without
    /// destinations.
    pub fn services(&mut self) -> Result<Vec<ServiceStatus>, Error> {
        let op = "list services";
        let replies = self.request(op, &Request::dump_services())?;
        replies
            .iter()
            .map(|r| Self::decode(op, codec::parse_service_reply(&r.view())))
            .collect()
    }

    /// GET_SERVICE for one service (with its destinations).
    pub fn service(&mut self, key: &ServiceKey) -> Result<ServiceStatus, Error> {
        let op = format!("get service {key}");
        let req = Self::encoded(&op, Request::get_service(key))?;
        let replies = self.request(&op, &req)?;
        let first = replies.first().ok_or_else(|| Error::Decode {
            op: op.clone(),
            source: codec::DecodeError::Missing {
                object: "GET_SERVICE reply",
                attr: "message",
            },
        })?;
        let mut svc = Self::decode(&op, codec::parse_service_reply(&first.view()))?;
        svc.dests = self.dests(&svc.config)?;
        Ok(svc)
    }

    /// GET_DEST dump: the service's destinations in kernel list order (newest first).
    pub fn dests(&mut self, svc: &ServiceConfig) -> Result<Vec<DestStatus>, Error> {
        let op = format!("list destinations of service {}", svc.key);
        let req = Self::encoded(&op, Request::dump_dests(svc))?;
        let af = codec::service_af(&svc.key);
        let replies = self.request(&op, &req)?;
        replies
            .iter()
            .map(|r| Self::decode(&op, codec::parse_dest_reply(&r.view(), af)))
            .collect()
    }

    /// `ipvsadm -L`: every service with its destinations (ipvsadm's message sequence: one
    /// service dump, then one destination dump per service).
    pub fn list_all(&mut self) -> Result<Vec<ServiceStatus>, Error> {
        let mut services = self.services()?;
        for svc in &mut services {
            svc.dests = self.dests(&svc.config)?;
        }
        Ok(services)
    }

    /// `ipvsadm -Z [service]`.
    pub fn zero_counters(&mut self, key: Option<&ServiceKey>) -> Result<(), Error> {
        let op = match key {
            Some(k) => format!("zero counters of service {k}"),
            None => "zero all counters".to_string(),
        };
        let req = Self::encoded(&op, Request::zero(key))?;
        self.request(&op, &req).map(drop)
    }

    /// `ipvsadm -C`.
    pub fn flush_all(&mut self) -> Result<(), Error> {
        self.request("flush all services", &Request::flush())
            .map(drop)
    }

    /// `ipvsadm -L --timeout`.
    pub fn get_timeouts(&mut self) -> Result<Timeouts, Error> {
        let op = "get timeouts";
        let replies = self.request(op, &Request::get_timeouts())?;
        let first = replies.first().ok_or_else(|| Error::Decode {
            op: op.into(),
            source: codec::DecodeError::Missing {
                object: "GET_CONFIG reply",
                attr: "message",
            },
        })?;
        Self::decode(op, codec::parse_timeouts_reply(&first.view()))
    }

    /// `ipvsadm --set tcp tcpfin udp` (0 leaves a value unchanged).
    pub fn put_timeouts(&mut self, t: &Timeouts) -> Result<(), Error> {
        self.request("set timeouts", &Request::set_timeouts(t))
            .map(drop)
    }
}

impl LoadBalancer for IpvsClient {
    fn info(&mut self) -> Result<LbInfo, LbError> {
        self.get_info().map_err(|e| to_lb_error(e, Target::Other))
    }

    fn add_service(&mut self, svc: &ServiceConfig) -> Result<(), LbError> {
        self.new_service(svc)
            .map_err(|e| to_lb_error(e, Target::Service))
    }

    fn edit_service(&mut self, svc: &ServiceConfig) -> Result<(), LbError> {
        self.set_service(svc)
            .map_err(|e| to_lb_error(e, Target::Service))
    }

    fn delete_service(&mut self, key: &ServiceKey) -> Result<(), LbError> {
        self.del_service(key)
            .map_err(|e| to_lb_error(e, Target::Service))
    }

    fn add_dest(&mut self, svc: &ServiceKey, dest: &DestConfig) -> Result<(), LbError> {
        self.new_dest(svc, dest)
            .map_err(|e| to_lb_error(e, Target::Dest))
    }

    fn edit_dest(&mut self, svc: &ServiceKey, dest: &DestConfig) -> Result<(), LbError> {
        self.set_dest(svc, dest)
            .map_err(|e| to_lb_error(e, Target::Dest))
    }

    fn delete_dest(&mut self, svc: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), LbError> {
        self.del_dest(svc, addr, port)
            .map_err(|e| to_lb_error(e, Target::Dest))
    }

    fn list(&mut self) -> Result<Vec<ServiceStatus>, LbError> {
        self.list_all().map_err(|e| to_lb_error(e, Target::Other))
    }

    fn zero(&mut self, svc: Option<&ServiceKey>) -> Result<(), LbError> {
        self.zero_counters(svc)
            .map_err(|e| to_lb_error(e, Target::Service))
    }

    fn flush(&mut self) -> Result<(), LbError> {
        self.flush_all().map_err(|e| to_lb_error(e, Target::Other))
    }

    fn timeouts(&mut self) -> Result<Timeouts, LbError> {
        self.get_timeouts()
            .map_err(|e| to_lb_error(e, Target::Other))
    }

    fn set_timeouts(&mut self, t: &Timeouts) -> Result<(), LbError> {
        self.put_timeouts(t)
            .map_err(|e| to_lb_error(e, Target::Other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe must agree with the kernel this runs on: the `vs` sysctl directory exists
    /// exactly when the ip_vs module is present in this namespace.
    #[test]
    fn connect_probe_agrees_with_the_running_kernel() {
        let loaded = std::path::Path::new("/proc/sys/net/ipv4/vs").exists();
        match IpvsClient::connect() {
            Ok(c) => {
                assert!(
                    loaded,
                    "IPVS family resolved but /proc/sys/net/ipv4/vs is missing"
                );
                assert_ne!(c.family_id(), 0);
            }
            Err(Error::Unavailable(m)) => {
                assert!(!loaded, "IPVS is loaded but the probe said: {m}");
                assert!(m.contains("no IPVS") && m.contains("VM"), "{m}");
                let lb = to_lb_error(Error::Unavailable(m), Target::Other);
                assert!(matches!(lb, LbError::Unavailable(_)));
            }
            Err(e) => panic!("probe failed in an unexpected way: {e}"),
        }
    }
}
