//! pcapng round trips: random captures survive write → read unchanged, and writing is
//! deterministic.

use lvslab_pcap::{Capture, Frame, Interface, LinkType, PacketDirection};
use proptest::prelude::*;

fn capture() -> impl Strategy<Value = Capture> {
    let iface = ("[a-z]{1,8}:[a-z0-9]{1,6}", prop::bool::ANY).prop_map(|(name, raw)| Interface {
        name,
        linktype: if raw {
            LinkType::RawIp
        } else {
            LinkType::Ethernet
        },
        snaplen: 262_144,
    });
    prop::collection::vec(iface, 1..4).prop_flat_map(|ifaces| {
        let n = ifaces.len() as u32;
        let frame = (
            0..n,
            any::<u64>(),
            prop::collection::vec(any::<u8>(), 0..200),
            prop::option::of(prop::bool::ANY),
            prop::collection::vec("[ -~]{0,20}", 0..3),
            0u32..100,
        )
            .prop_map(|(interface, ts_ns, data, dir, comments, extra)| Frame {
                interface,
                ts_ns,
                orig_len: data.len() as u32 + extra,
                data,
                direction: dir.map(|o| {
                    if o {
                        PacketDirection::Outbound
                    } else {
                        PacketDirection::Inbound
                    }
                }),
                comments,
            });
        (Just(ifaces), prop::collection::vec(frame, 0..20))
            .prop_map(|(interfaces, frames)| Capture { interfaces, frames })
    })
}

proptest! {
    #[test]
    fn write_read_round_trip(cap in capture()) {
        let bytes = cap.to_pcapng().expect("encode");
        prop_assert_eq!(&bytes, &cap.to_pcapng().expect("encode again"));
        let back = Capture::from_pcapng(&bytes).expect("decode");
        prop_assert_eq!(back, cap);
    }

    #[test]
    fn reader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Capture::from_pcapng(&bytes);
        let _ = lvslab_pcap::pcapng::read_pcap(&bytes, "x");
    }
}
