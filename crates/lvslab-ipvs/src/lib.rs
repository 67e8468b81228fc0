//! lvslab-ipvs: kernel IPVS over generic netlink.
//!
//! Its one job: carry [`LoadBalancer`](lvslab_spec::lb::LoadBalancer) calls to the
//! kernel's IPVS and the kernel's answers back, in exactly the messages ipvsadm sends. It
//! depends on lvslab-spec (the model and the trait) and on `neli` for the socket only. It
//! only talks generic netlink to the kernel's IPVS and never decides policy: which
//! services and destinations exist, and when, is its caller's choice (`lvslab-instance`, or
//! the ipvsadm commands `lvslab-ipvsadm` turns into calls); it encodes, sends, decodes
//! and maps errors, nothing else.
//!
//! - [`IpvsClient`] talks to the kernel's IPVS (family `"IPVS"`) and implements
//!   [`lvslab_spec::lb::LoadBalancer`]. [`IpvsClient::connect`] is also the capability
//!   probe: it returns [`Error::Unavailable`] on a kernel without IPVS.
//! - [`codec`] and [`wire`] are the pure halves: model → request bytes and reply bytes →
//!   model, byte-for-byte what ipvsadm 1.31 sends, tested without a kernel.
//! - [`install`] puts a lab's services on the IPVS of its director's namespace.
//! - ipvsadm's command line and listings are not here: `lvslab-ipvsadm` runs them against
//!   this client (and against the userspace director) through the `LoadBalancer` trait.
//!
//! **Namespaces.** IPVS state is per network namespace and a netlink socket belongs to the
//! namespace its creating thread was in. Create the client on a thread that has entered
//! the target namespace (or create it there and move it out); it then always addresses that
//! namespace's IPVS, whichever thread uses it.
//!
//! The socket layer is `neli`'s `NlSocket` (plain send/recv); message building and parsing
//! are our own so the bytes are exactly under control and unit-testable.

pub mod client;
pub mod codec;
pub mod error;
pub mod install;
pub mod wire;

pub use client::IpvsClient;
pub use error::Error;
