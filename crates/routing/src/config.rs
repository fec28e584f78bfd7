//! Configuration read from TOML: carriers (`[[carriers]]`) and dial plans (`[[dial_plans]]`).

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a carrier is reached.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    #[default]
    Udp,
    Tcp,
    /// SIP over TLS: the carrier's certificate is verified (`[tls] ca_file`, or pinned with
    /// `tls_pin_sha256`) before anything is sent.
    Tls,
}

impl fmt::Display for Transport {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        })
    }
}

/// What the carrier is told about the caller.
///
/// In TOML: `caller_id = "pass_through"`, `caller_id = "hide"` or
/// `caller_id = { fixed = "442071234567" }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CallerIdRule {
    /// The caller's own number.
    #[default]
    PassThrough,
    /// Always this number (an operator's billing number, for carriers that require one).
    Fixed(String),
    /// Anonymous: the shell sends `anonymous@anonymous.invalid` and `Privacy: id`.
    Hide,
}

impl CallerIdRule {
    /// The number to present for a call from `caller`; `None` means present anonymously.
    pub fn apply<'a>(&'a self, caller: &'a str) -> Option<&'a str> {
        match self {
            CallerIdRule::PassThrough => Some(caller),
            CallerIdRule::Fixed(number) => Some(number),
            CallerIdRule::Hide => None,
        }
    }
}

/// One SIP trunk that terminates calls.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CarrierConfig {
    pub name: String,
    /// IP address or host name.
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub transport: Transport,
    /// Digest credentials, when the carrier challenges our INVITEs.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// Leading digits removed from the E.164 number before `add_prefix` is prepended.
    #[serde(default)]
    pub strip_digits: usize,
    /// Prepended to the number in the Request-URI (a tech prefix, or `00`).
    #[serde(default)]
    pub add_prefix: String,
    #[serde(default)]
    pub caller_id: CallerIdRule,
    /// Concurrent calls allowed on this carrier; `None` means no limit.
    #[serde(default)]
    pub max_calls: Option<u32>,
    /// New calls per second allowed (a token bucket holding one second of calls).
    #[serde(default)]
    pub calls_per_second: Option<u32>,
    /// Final responses that mean "try the next carrier". `None` uses the default rule
    /// ([`crate::fails_over`]); no response at all always fails over.
    #[serde(default)]
    pub failover_codes: Option<Vec<u16>>,
    /// Name of the ledger tariff holding this carrier's buy rates.
    #[serde(default)]
    pub buy_tariff: Option<String>,
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// TLS only: the name its certificate must carry (default: `host`).
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// TLS only: the SHA-256 of the certificate it must present (64 hex digits), instead of a
    /// chain to the roots: for carriers with a self-signed certificate.
    #[serde(default)]
    pub tls_pin_sha256: Option<String>,
    /// How often to send OPTIONS; 0 turns the health check off (the carrier is always up).
    #[serde(default = "default_options_interval_ms")]
    pub options_interval_ms: u64,
    /// No 100 Trying within this many milliseconds: give up on the carrier and fail over.
    #[serde(default = "default_invite_timeout_ms")]
    pub invite_timeout_ms: u64,
    /// Register with the carrier (REGISTER with `username`/`password`) for this many
    /// seconds, refreshed at half-time; 0 (the default) does not register.
    #[serde(default)]
    pub register_expires_s: u32,
    /// Send the INVITE without SDP (delayed offer, what H.323 gateways and some trunks
    /// want): the carrier offers in its 200 and the switch answers in the ACK.
    #[serde(default)]
    pub delayed_offer: bool,
}

fn default_port() -> u16 {
    5060
}

fn default_enabled() -> bool {
    true
}

fn default_options_interval_ms() -> u64 {
    30_000
}

fn default_invite_timeout_ms() -> u64 {
    2_000
}

impl CarrierConfig {
    /// A carrier with every optional setting at its default.
    pub fn new(name: impl Into<String>, host: impl Into<String>) -> CarrierConfig {
        CarrierConfig {
            name: name.into(),
            host: host.into(),
            port: default_port(),
            transport: Transport::default(),
            username: None,
            password: None,
            strip_digits: 0,
            add_prefix: String::new(),
            caller_id: CallerIdRule::default(),
            max_calls: None,
            calls_per_second: None,
            failover_codes: None,
            buy_tariff: None,
            enabled: true,
            tls_server_name: None,
            tls_pin_sha256: None,
            options_interval_ms: default_options_interval_ms(),
            invite_timeout_ms: default_invite_timeout_ms(),
            register_expires_s: 0,
            delayed_offer: false,
        }
    }

    /// The Request-URI user for `number`: `strip_digits` leading digits removed (all of them
    /// when the number is shorter), then `add_prefix` prepended.
    pub fn rewrite(&self, number: &str) -> String {
        let kept = number.get(self.strip_digits..).unwrap_or("");
        let mut user = String::with_capacity(self.add_prefix.len() + kept.len());
        user.push_str(&self.add_prefix);
        user.push_str(kept);
        user
    }

    /// Whether a final response (or none, `None`) from this carrier means "try the next one".
    pub fn fails_over(&self, status: Option<u16>) -> bool {
        crate::fails_over(self.failover_codes.as_deref(), status)
    }
}

/// Never prints the password.
impl fmt::Debug for CarrierConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("CarrierConfig")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("transport", &self.transport)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("strip_digits", &self.strip_digits)
            .field("add_prefix", &self.add_prefix)
            .field("caller_id", &self.caller_id)
            .field("max_calls", &self.max_calls)
            .field("calls_per_second", &self.calls_per_second)
            .field("failover_codes", &self.failover_codes)
            .field("buy_tariff", &self.buy_tariff)
            .field("enabled", &self.enabled)
            .field("options_interval_ms", &self.options_interval_ms)
            .field("invite_timeout_ms", &self.invite_timeout_ms)
            .finish()
    }
}

/// How the carriers of one route are ordered.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RouteMode {
    /// By `priority` (lower first), then the order listed.
    #[default]
    Priority,
    /// By each carrier's buy rate for the number (cheapest first), then priority, then name.
    LeastCost,
    /// A random order drawn by `weight`: a carrier is first in `weight / total` of calls.
    Weighted,
}

impl fmt::Display for RouteMode {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            RouteMode::Priority => "priority",
            RouteMode::LeastCost => "least cost",
            RouteMode::Weighted => "weighted",
        })
    }
}

/// A carrier named by a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteCarrier {
    pub name: String,
    /// Lower is tried first (priority mode) or wins a buy-rate tie (least-cost mode).
    #[serde(default)]
    pub priority: u32,
    /// Share in weighted mode.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

impl RouteCarrier {
    pub fn new(name: impl Into<String>) -> RouteCarrier {
        RouteCarrier {
            name: name.into(),
            priority: 0,
            weight: default_weight(),
        }
    }
}

/// Destinations starting with `prefix` (E.164 digits; `""` matches every number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub mode: RouteMode,
    #[serde(default)]
    pub carriers: Vec<RouteCarrier>,
    /// Refuse these destinations outright (premium-rate numbers).
    #[serde(default)]
    pub blocked: bool,
}

/// A named dial plan (seed 003's "premium" and "regular"); the longest matching prefix wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DialPlanConfig {
    pub name: String,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// Everything routing reads, for a configuration file that keeps it in one place.
///
/// The shell may instead hold `carriers` and `dial_plans` fields of its own; do not
/// `#[serde(flatten)]` this struct, because it refuses unknown fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    #[serde(default)]
    pub carriers: Vec<CarrierConfig>,
    #[serde(default)]
    pub dial_plans: Vec<DialPlanConfig>,
    #[serde(default)]
    pub number_rules: crate::NumberRules,
}
