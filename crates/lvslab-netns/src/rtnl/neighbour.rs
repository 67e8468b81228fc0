//! `ip neigh`: permanent neighbour entries and the neighbour table.

use std::collections::HashMap;
use std::net::IpAddr;

use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::RouteType;
use rtnetlink::packet_route::RouteNetlinkMessage;

use super::{family_of, iface_name, lower_debug, NsHandle};
use crate::dump::NeighbourInfo;
use crate::error::Result;
use crate::mac::MacAddr;

impl NsHandle {
    /// `ip neigh replace IP lladdr MAC dev IFACE nud permanent`.
    pub fn add_neighbour(&self, iface: &str, ip: IpAddr, mac: MacAddr) -> Result<()> {
        let op = format!("ip neigh replace {ip} lladdr {mac} dev {iface} nud permanent");
        self.writable(&op)?;
        let index = self.link_index_for(&op, iface)?;
        let mut message = NeighbourMessage::default();
        message.header.family = family_of(ip);
        message.header.ifindex = index;
        message.header.state = NeighbourState::Permanent;
        message.header.kind = RouteType::Unicast;
        message
            .attributes
            .push(NeighbourAttribute::Destination(match ip {
                IpAddr::V4(v4) => NeighbourAddress::Inet(v4),
                IpAddr::V6(v6) => NeighbourAddress::Inet6(v6),
            }));
        message
            .attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.octets().to_vec()));
        self.ack(
            &op,
            Some(iface),
            RouteNetlinkMessage::NewNeighbour(message),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
    }

    /// `ip neigh show` (both families).
    pub fn neighbours(&self) -> Result<Vec<NeighbourInfo>> {
        let op = "ip neigh show";
        let names = self.link_names(op)?;
        let dump = self.dump(
            op,
            RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default()),
        )?;
        Ok(dump
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) => neighbour_info(&n, &names),
                _ => None,
            })
            .collect())
    }
}

fn neighbour_info(
    message: &NeighbourMessage,
    names: &HashMap<u32, String>,
) -> Option<NeighbourInfo> {
    let mut ip = None;
    let mut mac = None;
    for attr in &message.attributes {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                ip = Some(IpAddr::V4(*v4))
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                ip = Some(IpAddr::V6(*v6))
            }
            NeighbourAttribute::LinkLayerAddress(bytes) => mac = MacAddr::from_slice(bytes),
            _ => {}
        }
    }
    Some(NeighbourInfo {
        iface: iface_name(names, message.header.ifindex),
        ip: ip?,
        mac,
        state: lower_debug(message.header.state),
    })
}
