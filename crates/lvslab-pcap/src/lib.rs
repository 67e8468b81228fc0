//! lvslab-pcap
