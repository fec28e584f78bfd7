//! Sans-IO parts of the back-to-back user agent that the tokio shell drives.
//!
//! Today this holds the per-call deadline queue; the call control that still lives in the
//! shell (`crates/talktime/src/calls.rs`) moves here piece by piece (issue 14).

pub mod deadlines;

pub use deadlines::Deadlines;
