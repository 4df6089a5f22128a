//! One parsed flow-log record, borrowing its text fields from the input buffer.

use std::net::IpAddr;

use crate::net::Protocol;

/// `ACCEPT` or `REJECT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Accept,
    Reject,
}

/// `OK`, `NODATA` (no traffic in the window) or `SKIPDATA` (records skipped in the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LogStatus {
    #[default]
    Ok,
    NoData,
    SkipData,
}

/// `ingress` or `egress`, relative to the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowDirection {
    Ingress,
    Egress,
}

/// TCP flags as flow logs report them, OR-ed over the window: FIN 1, SYN 2, RST 4, SYN-ACK 18.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    pub const FIN: u16 = 1;
    pub const SYN: u16 = 2;
    pub const RST: u16 = 4;
    pub const ACK: u16 = 16;

    /// The record saw the connection close (FIN or RST).
    pub fn closes(self) -> bool {
        self.0 & (Self::FIN | Self::RST) != 0
    }

    /// The record saw a connection open (SYN, or SYN-ACK).
    pub fn opens(self) -> bool {
        self.0 & Self::SYN != 0
    }
}

/// A flow-log record. Fields the format lacks, or that hold `-`, are `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Record<'a> {
    pub version: Option<u8>,
    pub account_id: Option<&'a str>,
    pub interface_id: Option<&'a str>,
    pub srcaddr: Option<IpAddr>,
    pub dstaddr: Option<IpAddr>,
    pub srcport: Option<u16>,
    pub dstport: Option<u16>,
    pub protocol: Option<Protocol>,
    pub packets: Option<u64>,
    pub bytes: Option<u64>,
    /// First packet of the flow in the window (Unix seconds).
    pub start: Option<u64>,
    /// Last packet of the flow in the window (Unix seconds).
    pub end: Option<u64>,
    pub action: Option<Action>,
    pub log_status: LogStatus,
    pub vpc_id: Option<&'a str>,
    pub subnet_id: Option<&'a str>,
    pub instance_id: Option<&'a str>,
    pub tcp_flags: Option<TcpFlags>,
    pub pkt_srcaddr: Option<IpAddr>,
    pub pkt_dstaddr: Option<IpAddr>,
    pub az_id: Option<&'a str>,
    pub pkt_src_aws_service: Option<&'a str>,
    pub pkt_dst_aws_service: Option<&'a str>,
    pub flow_direction: Option<FlowDirection>,
}

impl Record<'_> {
    /// The original destination of the packet (`pkt-dstaddr` when the format has it, else `dstaddr`).
    pub fn packet_dst(&self) -> Option<IpAddr> {
        self.pkt_dstaddr.or(self.dstaddr)
    }

    /// The original source of the packet (`pkt-srcaddr` when the format has it, else `srcaddr`).
    pub fn packet_src(&self) -> Option<IpAddr> {
        self.pkt_srcaddr.or(self.srcaddr)
    }
}
