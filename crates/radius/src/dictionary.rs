//! The attributes a prepaid gateway sends and reads: RFC 2865/2866 standard types and
//! Cisco's h323 vendor-specific ones (vendor 9), as FreeRADIUS's dictionary.cisco names them.

pub const USER_NAME: u8 = 1;
pub const USER_PASSWORD: u8 = 2;
pub const NAS_IP_ADDRESS: u8 = 4;
pub const REPLY_MESSAGE: u8 = 18;
pub const SESSION_TIMEOUT: u8 = 27;
pub const CALLED_STATION_ID: u8 = 30;
pub const CALLING_STATION_ID: u8 = 31;
pub const NAS_IDENTIFIER: u8 = 32;
pub const ACCT_STATUS_TYPE: u8 = 40;
pub const ACCT_SESSION_ID: u8 = 44;
pub const ACCT_SESSION_TIME: u8 = 46;

/// Acct-Status-Type values.
pub const STATUS_START: u32 = 1;
pub const STATUS_STOP: u32 = 2;
pub const STATUS_INTERIM: u32 = 3;
pub const STATUS_ACCOUNTING_ON: u32 = 7;
pub const STATUS_ACCOUNTING_OFF: u32 = 8;

/// Cisco's vendor id and its h323 attributes.
pub const CISCO: u32 = 9;
pub const CISCO_AVPAIR: u8 = 1;
pub const H323_CONF_ID: u8 = 24;
pub const H323_SETUP_TIME: u8 = 25;
pub const H323_CONNECT_TIME: u8 = 28;
pub const H323_DISCONNECT_TIME: u8 = 29;
pub const H323_DISCONNECT_CAUSE: u8 = 30;
pub const H323_CREDIT_AMOUNT: u8 = 101;
pub const H323_CREDIT_TIME: u8 = 102;
pub const H323_RETURN_CODE: u8 = 103;
pub const H323_PREFERRED_LANG: u8 = 107;
pub const H323_CURRENCY: u8 = 110;

/// The h323 attribute names Cisco writes before `=` in their values.
pub fn cisco_name(kind: u8) -> &'static str {
    match kind {
        H323_CONF_ID => "h323-conf-id",
        H323_SETUP_TIME => "h323-setup-time",
        H323_CONNECT_TIME => "h323-connect-time",
        H323_DISCONNECT_TIME => "h323-disconnect-time",
        H323_DISCONNECT_CAUSE => "h323-disconnect-cause",
        H323_CREDIT_AMOUNT => "h323-credit-amount",
        H323_CREDIT_TIME => "h323-credit-time",
        H323_RETURN_CODE => "h323-return-code",
        H323_PREFERRED_LANG => "h323-preferred-lang",
        H323_CURRENCY => "h323-currency",
        _ => "",
    }
}

/// h323-return-code values of Cisco's debit-card application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnCode {
    Success = 0,
    InvalidAccount = 1,
    InvalidPassword = 2,
    AccountInUse = 3,
    ZeroBalance = 4,
    CardExpired = 5,
    CreditLimit = 6,
    UserDenied = 7,
    ServiceUnavailable = 8,
    CalledNumberBlocked = 9,
    RetriesExceeded = 10,
    InvalidArgument = 11,
    InsufficientBalance = 12,
}

impl ReturnCode {
    pub fn value(self) -> u8 {
        self as u8
    }
}
