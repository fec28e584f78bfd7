//! Sans-IO RADIUS for prepaid gateways (issue 17): packets (RFC 2865, 2866), the
//! shared-secret arithmetic (authenticators, RFC 2869 Message-Authenticator, hidden
//! passwords), and a server state machine with RFC 5080 duplicate detection that turns a
//! gateway's debit-card requests (card authentication, destination authorization, accounting
//! start/interim/stop) into [`server::Request`]s and the shell's [`server::Reply`]s into
//! signed answers with Cisco h323 VSAs (or bare values, as Quintum and AudioCodes read them).
//! No sockets, clock or database: the shell reads datagrams, asks the ledger, sends answers.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod crypto;
pub mod dictionary;
pub mod packet;
pub mod server;

pub use dictionary::ReturnCode;
pub use packet::{Attribute, Code, DecodeError, Packet};
pub use server::{
    AccountingRecord, AccountingStatus, Action, ClientConfig, ConfigError, Counters, Credentials,
    Dropped, Handle, Received, Reply, Request, Server, Style,
};
