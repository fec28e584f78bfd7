//! Why a call or an attempt ended, and the one table that maps that onto Q.850 and SIP.

use serde::{Deserialize, Serialize};

/// Why a leg, an attempt or a call ended. Stored in CDRs as [`DisconnectCause::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisconnectCause {
    /// Ended by the switch with nothing wrong (e.g. a graceful shutdown).
    Normal,
    CallerHungUp,
    CarrierHungUp,
    /// The talk-time limit was reached.
    CreditExhausted,
    /// No RTP for too long on an answered call.
    MediaTimeout,
    NoAnswer,
    Busy,
    /// The carrier (or every carrier of the route) failed for another reason.
    Failed,
    UnknownDestination,
    BlockedDestination,
    NoCredit,
    CardInUse,
    CardExpired,
    /// Too many wrong PINs.
    AuthenticationFailed,
    /// The caller ID is locked out after earlier failures.
    LockedOut,
    /// The caller stayed silent at a prompt too many times.
    NoInput,
    /// A lookup or authorization did not answer in time.
    SystemError,
    /// The switch was stopped (SIGTERM after the drain time, or a second signal).
    Shutdown,
    /// The node carrying the call died; billed at restart to its last heartbeat.
    NodeLost,
    /// The call reached the most one call may cost (`[billing] max_call_cost`).
    CostCap,
    /// The account reached the most it may spend in a day (`[billing] max_daily_spend`).
    DailySpendCap,
    /// The caller did not refresh its RFC 4028 session timer: it is gone.
    SessionExpired,
    /// An operator hung the call up from the console.
    Operator,
}

/// Who ended a leg or a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    Caller,
    Carrier,
    /// The switch itself: credit limit, IVR decision, timeout.
    Switch,
}

/// The Q.850 cause and reason text that go with a [`DisconnectCause`].
struct CauseEntry {
    q850: u8,
    text: &'static str,
    name: &'static str,
}

impl DisconnectCause {
    /// Every cause, for tables and tests.
    pub const ALL: [DisconnectCause; 23] = [
        DisconnectCause::Normal,
        DisconnectCause::CallerHungUp,
        DisconnectCause::CarrierHungUp,
        DisconnectCause::CreditExhausted,
        DisconnectCause::MediaTimeout,
        DisconnectCause::NoAnswer,
        DisconnectCause::Busy,
        DisconnectCause::Failed,
        DisconnectCause::UnknownDestination,
        DisconnectCause::BlockedDestination,
        DisconnectCause::NoCredit,
        DisconnectCause::CardInUse,
        DisconnectCause::CardExpired,
        DisconnectCause::AuthenticationFailed,
        DisconnectCause::LockedOut,
        DisconnectCause::NoInput,
        DisconnectCause::SystemError,
        DisconnectCause::Shutdown,
        DisconnectCause::NodeLost,
        DisconnectCause::CostCap,
        DisconnectCause::DailySpendCap,
        DisconnectCause::SessionExpired,
        DisconnectCause::Operator,
    ];

    /// The single mapping table. Q.850: 1 unallocated number, 16 normal clearing, 17 user
    /// busy, 19 no answer, 21 call rejected, 31 normal unspecified, 41 temporary failure,
    /// 102 recovery on timer expiry.
    fn entry(self) -> CauseEntry {
        let (q850, text, name) = match self {
            DisconnectCause::Normal => (16, "normal clearing", "normal"),
            DisconnectCause::CallerHungUp => (16, "caller hung up", "caller_hung_up"),
            DisconnectCause::CarrierHungUp => (16, "called party hung up", "carrier_hung_up"),
            DisconnectCause::CreditExhausted => (16, "credit exhausted", "credit_exhausted"),
            DisconnectCause::MediaTimeout => (102, "media timeout", "media_timeout"),
            DisconnectCause::NoAnswer => (19, "no answer", "no_answer"),
            DisconnectCause::Busy => (17, "user busy", "busy"),
            DisconnectCause::Failed => (31, "call failed", "failed"),
            DisconnectCause::UnknownDestination => (1, "unallocated number", "unknown_destination"),
            DisconnectCause::BlockedDestination => {
                (21, "destination blocked", "blocked_destination")
            }
            DisconnectCause::NoCredit => (21, "no credit", "no_credit"),
            DisconnectCause::CardInUse => (21, "card in use", "card_in_use"),
            DisconnectCause::CardExpired => (21, "card expired", "card_expired"),
            DisconnectCause::AuthenticationFailed => {
                (21, "authentication failed", "authentication_failed")
            }
            DisconnectCause::LockedOut => (21, "locked out", "locked_out"),
            DisconnectCause::NoInput => (102, "no input", "no_input"),
            DisconnectCause::SystemError => (41, "temporary failure", "system_error"),
            DisconnectCause::Shutdown => (16, "switch shutdown", "shutdown"),
            DisconnectCause::NodeLost => (41, "node lost", "node_lost"),
            DisconnectCause::CostCap => (16, "call cost limit", "cost_cap"),
            DisconnectCause::DailySpendCap => (16, "daily spend limit", "daily_spend_cap"),
            DisconnectCause::SessionExpired => (102, "session expired", "session_expired"),
            DisconnectCause::Operator => (16, "operator hangup", "operator"),
        };
        CauseEntry { q850, text, name }
    }

    /// The Q.850 cause value.
    pub fn q850(self) -> u8 {
        self.entry().q850
    }

    /// The reason text carried in the SIP `Reason` header.
    pub fn text(self) -> &'static str {
        self.entry().text
    }

    /// The value of a SIP `Reason` header (RFC 3326), e.g.
    /// `Q.850;cause=16;text="credit exhausted"`.
    pub fn reason_header(self) -> String {
        format!("Q.850;cause={};text=\"{}\"", self.q850(), self.text())
    }

    /// A stable snake_case name for CDR columns.
    pub fn as_str(self) -> &'static str {
        self.entry().name
    }

    /// Parses [`DisconnectCause::as_str`].
    pub fn from_name(name: &str) -> Option<Self> {
        DisconnectCause::ALL
            .into_iter()
            .find(|cause| cause.as_str() == name)
    }

    /// The final SIP response to a caller never answered that ends with this cause, from its
    /// Q.850 value (RFC 3398 §7.2.4.1); the way back of [`DisconnectCause::from_sip_status`].
    pub fn unanswered_status(self) -> (u16, &'static str) {
        match self.q850() {
            1 => (404, "Not Found"),
            17 => (486, "Busy Here"),
            21 => (403, "Forbidden"),
            41 => (503, "Service Unavailable"),
            _ => (480, "Temporarily Unavailable"),
        }
    }

    /// The cause of a failed carrier attempt from its final SIP status.
    pub fn from_sip_status(status: u16) -> Self {
        match status {
            486 | 600 => DisconnectCause::Busy,
            408 | 480 | 487 => DisconnectCause::NoAnswer,
            404 | 410 | 484 | 604 => DisconnectCause::UnknownDestination,
            _ => DisconnectCause::Failed,
        }
    }
}

/// A hang-up instruction: the cause with its Q.850 value and SIP `Reason` header text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub cause: DisconnectCause,
    pub q850: u8,
    /// Value for the SIP `Reason` header of the BYE or CANCEL.
    pub reason_header: String,
}

impl From<DisconnectCause> for Release {
    fn from(cause: DisconnectCause) -> Self {
        Release {
            cause,
            q850: cause.q850(),
            reason_header: cause.reason_header(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_header_for_credit_exhausted() {
        assert_eq!(
            DisconnectCause::CreditExhausted.reason_header(),
            "Q.850;cause=16;text=\"credit exhausted\""
        );
        let release = Release::from(DisconnectCause::Busy);
        assert_eq!(release.q850, 17);
        assert_eq!(release.reason_header, "Q.850;cause=17;text=\"user busy\"");
    }

    #[test]
    fn names_are_unique_and_round_trip() {
        for cause in DisconnectCause::ALL {
            assert_eq!(DisconnectCause::from_name(cause.as_str()), Some(cause));
            let same_name = DisconnectCause::ALL
                .iter()
                .filter(|other| other.as_str() == cause.as_str())
                .count();
            assert_eq!(same_name, 1, "{cause:?}");
            assert!(!cause.text().contains('"'));
        }
    }

    #[test]
    fn sip_status_table() {
        let table = [
            (486, DisconnectCause::Busy),
            (600, DisconnectCause::Busy),
            (408, DisconnectCause::NoAnswer),
            (480, DisconnectCause::NoAnswer),
            (487, DisconnectCause::NoAnswer),
            (404, DisconnectCause::UnknownDestination),
            (484, DisconnectCause::UnknownDestination),
            (604, DisconnectCause::UnknownDestination),
            (403, DisconnectCause::Failed),
            (503, DisconnectCause::Failed),
            (500, DisconnectCause::Failed),
        ];
        for (status, cause) in table {
            assert_eq!(DisconnectCause::from_sip_status(status), cause, "{status}");
        }
        // And back, for a caller refused before it was answered.
        let back = [
            (DisconnectCause::Busy, 486),
            (DisconnectCause::UnknownDestination, 404),
            (DisconnectCause::CardInUse, 403),
            (DisconnectCause::NoCredit, 403),
            (DisconnectCause::SystemError, 503),
            (DisconnectCause::NoAnswer, 480),
            (DisconnectCause::Failed, 480),
        ];
        for (cause, status) in back {
            assert_eq!(cause.unanswered_status().0, status, "{cause:?}");
        }
    }
}
