//! The IPVS TCP state machine (`ip_vs_proto_tcp.c`): states, transition tables, timeouts.
//!
//! Event per segment by priority: RST, SYN, FIN, ACK; a segment with none of them forces CLOSE.
//! Client packets use the INPUT table, replies seen by the director the OUTPUT table; a
//! connection that has never shown an OUTPUT packet (every non-NAT one at creation) uses
//! INPUT_ONLY for client packets. `secure_tcp` selects the second set of tables.

/// IPVS TCP connection states, in the kernel's numeric order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TcpState {
    /// 0
    None,
    /// 1
    Established,
    /// 2
    SynSent,
    /// 3
    SynRecv,
    /// 4
    FinWait,
    /// 5
    TimeWait,
    /// 6
    Close,
    /// 7
    CloseWait,
    /// 8
    LastAck,
    /// 9
    Listen,
    /// 10
    SynAck,
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    None as NO, SynAck as SA, SynRecv as SR, SynSent as SS, TimeWait as TW,
};

impl TcpState {
    /// Every state in numeric order.
    pub const ALL: [TcpState; 11] = [NO, ES, SS, SR, FW, TW, CL, CW, LA, LI, SA];

    /// The kernel's state number.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name `ipvsadm -Lnc` prints.
    pub fn name(self) -> &'static str {
        match self {
            NO => "NONE",
            ES => "ESTABLISHED",
            SS => "SYN_SENT",
            SR => "SYN_RECV",
            FW => "FIN_WAIT",
            TW => "TIME_WAIT",
            CL => "CLOSE",
            CW => "CLOSE_WAIT",
            LA => "LAST_ACK",
            LI => "LISTEN",
            SA => "SYNACK",
        }
    }

    /// Whether a connection in this state counts in `activeconns` (kernels ≥ ~4.7 count the
    /// pre-established states too).
    pub fn is_active(self) -> bool {
        matches!(self, ES | SS | SR | SA)
    }

    /// Default timeout in seconds.
    pub fn default_timeout_s(self) -> u32 {
        match self {
            NO => 2,
            ES => 900,
            SS => 120,
            SR => 60,
            FW => 120,
            TW => 120,
            CL => 10,
            CW => 60,
            LA => 30,
            LI => 120,
            SA => 120,
        }
    }
}

/// TCP header flag bits as they appear in byte 13 of the header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// FIN bit.
    pub const FIN: u8 = 0x01;
    /// SYN bit.
    pub const SYN: u8 = 0x02;
    /// RST bit.
    pub const RST: u8 = 0x04;
    /// ACK bit.
    pub const ACK: u8 = 0x10;

    /// Whether SYN is set.
    pub fn syn(self) -> bool {
        self.0 & Self::SYN != 0
    }
    /// Whether FIN is set.
    pub fn fin(self) -> bool {
        self.0 & Self::FIN != 0
    }
    /// Whether RST is set.
    pub fn rst(self) -> bool {
        self.0 & Self::RST != 0
    }
    /// Whether ACK is set.
    pub fn ack(self) -> bool {
        self.0 & Self::ACK != 0
    }
}

/// Which transition table applies to a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableDir {
    /// Client → real server on a connection whose replies the director sees.
    Input,
    /// Real server → client (NAT/FullNAT replies).
    Output,
    /// Client → real server while no reply has been seen (DR, TUN, local).
    InputOnly,
}

type Row = [TcpState; 11];
/// Rows: syn, fin, ack, rst.
type Table = [Row; 4];

const NORMAL_INPUT: Table = [
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
];
const NORMAL_OUTPUT: Table = [
    [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
    [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
];
const NORMAL_INPUT_ONLY: Table = [
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];
const SECURE_INPUT: Table = [
    [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
    [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
    [ES, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];
const SECURE_OUTPUT: Table = [
    [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
    [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
];
const SECURE_INPUT_ONLY: Table = [
    [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
    [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

/// The state after a segment with `flags` in table `dir`, from `current`.
pub fn next_state(secure: bool, dir: TableDir, flags: TcpFlags, current: TcpState) -> TcpState {
    let row = if flags.rst() {
        3
    } else if flags.syn() {
        0
    } else if flags.fin() {
        1
    } else if flags.ack() {
        2
    } else {
        return CL;
    };
    let table = match (secure, dir) {
        (false, TableDir::Input) => &NORMAL_INPUT,
        (false, TableDir::Output) => &NORMAL_OUTPUT,
        (false, TableDir::InputOnly) => &NORMAL_INPUT_ONLY,
        (true, TableDir::Input) => &SECURE_INPUT,
        (true, TableDir::Output) => &SECURE_OUTPUT,
        (true, TableDir::InputOnly) => &SECURE_INPUT_ONLY,
    };
    table[row][current.index()]
}
