//! `lvslab ipvsadm` command lines against an in-memory dataplane that answers like the
//! kernel (EEXIST/ESRCH/ENOENT/ERANGE folded into `LbError` the way both dataplanes do).
//! Expected values come from ipvsadm 1.31's rules (defaults re-sent on -E/-e, port
//! inheritance, DR/TUN port forcing, its messages and exit statuses), not from the code.
//!
//! One test binary, files by subject: `configure` (commands that change the dataplane),
//! `listings` (`-L` and `-h` output), `syntax` (how argv is read), `errors` (refused
//! command lines and refused requests), `fuzz` (a property test over random and mutated
//! argv: no panic, every refusal names its culprit).

mod support;

mod configure;
mod errors;
mod fuzz;
mod listings;
mod syntax;
