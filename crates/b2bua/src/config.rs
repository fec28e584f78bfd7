//! Configuration: the shipped `config/talktime.toml` is embedded as the defaults, a user file
//! is merged over it key by key (arrays such as `access_numbers` are replaced whole), and
//! command-line flags override both.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use talktime_engine::{IvrConfig, Language};
use talktime_routing::{CarrierConfig, DialPlanConfig, NumberRules};
use thiserror::Error;

/// The shipped configuration file, which doubles as the documentation of every key.
pub const EMBEDDED_DEFAULTS: &str = include_str!("../../../config/talktime.toml");

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Syntax {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub database: DatabaseConfig,
    pub paths: PathsConfig,
    pub log: LogConfig,
    /// The IVR behaviour every access number starts from.
    pub ivr: IvrConfig,
    pub billing: BillingConfig,
    pub demo: DemoConfig,
    /// The HTTP admin API.
    #[serde(default)]
    pub admin: AdminConfig,
    /// What SIGTERM and SIGINT do.
    #[serde(default)]
    pub shutdown: ShutdownConfig,
    /// Calling callers back (callback access numbers and web callbacks).
    #[serde(default)]
    pub callback: CallbackConfig,
    /// SIP subscribers: phones that register with a password and call without the IVR.
    #[serde(default)]
    pub subscribers: SubscribersConfig,
    /// This switch's identity among others on one database, and when a silent one is dead.
    #[serde(default)]
    pub cluster: ClusterConfig,
    /// How many calls a source may start and hold.
    #[serde(default)]
    pub admission: AdmissionConfig,
    /// Alarms on abuse across calls: PIN-guessing campaigns, short calls, account spend.
    #[serde(default)]
    pub alarms: crate::alarms::AlarmConfig,
    /// The RADIUS server for gateways that run their own IVR (issue 17).
    #[serde(default)]
    pub radius: RadiusConfig,
    /// Scheduled backups of the embedded ledger.
    #[serde(default)]
    pub backup: BackupConfig,
    /// Certificates for SIP over TLS and HTTPS.
    #[serde(default)]
    pub tls: TlsConfig,
    /// E-mail: low balances, cards expiring, carriers going down.
    #[serde(default)]
    pub notifications: NotificationsConfig,
    #[serde(default)]
    pub portal: PortalConfig,
    /// Who may send calls to the access numbers and whose caller ID authenticates pinless
    /// callers. Nobody is trusted unless listed.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Numbers callers dial to reach the IVR.
    #[serde(default)]
    pub access_numbers: Vec<AccessNumber>,
    /// SIP trunks that terminate calls.
    #[serde(default)]
    pub carriers: Vec<CarrierConfig>,
    /// Which carriers each destination prefix goes to.
    #[serde(default)]
    pub dial_plans: Vec<DialPlanConfig>,
    /// How dialled numbers become E.164 digits, and which prefixes are never called.
    #[serde(default)]
    pub number_rules: NumberRules,
    /// The grammars of the IVR's languages: the shell loads every
    /// `prompts/<code>/language.toml`; English and Spanish are built in.
    #[serde(skip, default = "builtin_languages")]
    pub languages: std::sync::Arc<talktime_engine::LanguageBook>,
}

fn builtin_languages() -> std::sync::Arc<talktime_engine::LanguageBook> {
    talktime_engine::LanguageBook::builtin()
}

/// One access number (DID) and how its callers are served.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessNumber {
    /// The Request-URI user part, e.g. `18005550100`; `*` matches every number not
    /// otherwise configured.
    pub number: String,
    /// Languages offered (the first is the default); empty keeps `[ivr] languages`.
    #[serde(default)]
    pub languages: Vec<Language>,
    /// The dial plan its calls are routed with.
    #[serde(default = "default_dial_plan")]
    pub dial_plan: String,
    /// Calls to a toll-free access number pay the tariff's toll-free surcharge.
    #[serde(default)]
    pub toll_free: bool,
    /// DID forwarding (seed 003): registered callers go straight to their account's preset
    /// destination; others get the normal IVR. `None` keeps `[ivr] forwarding`.
    #[serde(default)]
    pub forwarding: Option<bool>,
    /// A balance line: after the PIN (or the caller ID) the balance and the last call's cost
    /// and length are announced, then goodbye; no call is placed.
    #[serde(default)]
    pub balance_only: bool,
    /// A recharge line: after the PIN (or the caller ID) a voucher code is asked, its value
    /// added and the new balance said, then goodbye; no call is placed.
    #[serde(default)]
    pub recharge_only: bool,
    /// A retail recharge line (issue 16): a reseller's agent keys its agent PIN (callers are
    /// never recognised by caller ID here), then a customer's number, an amount in cents and
    /// 1 to confirm; the amount moves from the reseller's credit to the customer, once.
    #[serde(default)]
    pub retail: bool,
    /// A callback line: a caller whose caller ID is registered (from a peer trusted for
    /// caller IDs) is refused unanswered with 480, so the call costs them nothing, and called
    /// back after `[callback] delay_ms`; the call back runs this number's IVR, already
    /// authenticated, and both legs are billed (the leg to the caller by its own destination).
    #[serde(default)]
    pub callback: bool,
    /// Play the welcome before a forwarded call. `None` keeps `[ivr] forwarding_welcome`.
    #[serde(default)]
    pub forwarding_welcome: Option<bool>,
    /// The country callers of this number are in, for national dialling (`44` with
    /// national prefix `0`: `02071234567` is `442071234567`). `None` keeps `[number_rules]`.
    #[serde(default)]
    pub country_code: Option<String>,
    #[serde(default)]
    pub national_prefix: Option<String>,
}

fn default_dial_plan() -> String {
    "default".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingConfig {
    /// Tariff for cards and accounts that name none.
    pub default_tariff: String,
    /// Local time for time-of-day rates, in minutes east of UTC.
    pub utc_offset_minutes: i32,
    /// Refuse a route whose carrier buy rate is above the sell rate.
    pub refuse_loss_making_routes: bool,
    /// Failed PIN tries from one caller ID within `pin_lockout_window_ms` that lock it out.
    pub pin_lockout_failures: i64,
    pub pin_lockout_window_ms: i64,
    pub pin_lockout_ms: i64,
    /// The most one call may cost (decimal text; empty: no cap). A call that reaches it is cut
    /// and billed at most this, with cause `cost_cap`.
    #[serde(default)]
    pub max_call_cost: String,
    /// The most one account may be charged for calls in a local day (empty: no cap); a call
    /// that reaches it is cut with cause `daily_spend_cap`, a new one refused.
    #[serde(default)]
    pub max_daily_spend: String,
    /// How often the running switch books maintenance fees that fell due.
    #[serde(default = "default_maintenance_check_ms")]
    pub maintenance_check_ms: u64,
}

fn default_maintenance_check_ms() -> u64 {
    60_000
}

/// What a fresh database gets on first start so the switch can take a call at once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoConfig {
    /// Create the demo tariff and card when the database has no tariff named
    /// `billing.default_tariff`.
    pub enabled: bool,
    /// The demo card's PIN; empty draws a random one (printed on first start).
    pub pin: String,
    /// Its balance, e.g. "10.00".
    pub balance: String,
    pub currency: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    /// SIP over TLS listeners (usually port 5061), with `[tls]`'s certificate.
    #[serde(default)]
    pub tls: Vec<SocketAddr>,
    pub advertised_address: String,
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    pub udp_mtu: usize,
    pub test_number: String,
    pub test_call_ms: u64,
    pub user_agent: String,
    pub min_session_expires_s: u32,
    /// TCP connections held at once, from all peers and from one host; past either a new
    /// one is closed at once (issue 20).
    #[serde(default = "default_tcp_connections")]
    pub max_tcp_connections: usize,
    #[serde(default = "default_tcp_connections_per_host")]
    pub max_tcp_connections_per_host: usize,
    /// A TCP connection that carries nothing for this long is closed (CRLF keep-alives count).
    #[serde(default = "default_tcp_idle_timeout_s")]
    pub tcp_idle_timeout_s: u64,
    /// Server transactions kept at once; a new request beyond gets 503 + Retry-After (memory
    /// stays bounded under a flood of new requests). A call leaves two behind for 32 s after
    /// its answer and its BYE (RFC 6026's Accepted state, Timer J over UDP), so the default
    /// carries about 3,900 calls a second; 100,000 had capped a sustained 3,000/s at ~1,560.
    #[serde(default = "default_max_transactions")]
    pub max_transactions: usize,
    /// Core threads the calls are spread over (issue 19), each its own switch with its own
    /// transactions, dialogs and share of the RTP ports; a call's core is a hash of its
    /// Call-ID. Per-source admission, alarms and carrier limits are shared exactly; the
    /// switch-wide `[admission] max_calls` and `max_transactions` are split evenly. 1 (the
    /// default) is one core loop, as before.
    #[serde(default = "default_core_threads")]
    pub core_threads: usize,
}

fn default_core_threads() -> usize {
    1
}

fn default_max_transactions() -> usize {
    250_000
}

fn default_tcp_connections() -> usize {
    4096
}

fn default_tcp_connections_per_host() -> usize {
    64
}

fn default_tcp_idle_timeout_s() -> u64 {
    600
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtpConfig {
    pub port_min: u16,
    pub port_max: u16,
    pub inactivity_timeout_ms: u64,
    /// Threads that carry RTP; 0 (the default) means one per core.
    #[serde(default)]
    pub media_threads: usize,
    /// How long a media thread lets packets gather after a round of work (0: not at all).
    #[serde(default = "default_batch_interval_us")]
    pub batch_interval_us: u64,
    /// Accept a leg's RTP only from the host its SDP names or its SIP peer's host (issue 20:
    /// a third party can neither take a call's media nor inject digits); off: from any host.
    #[serde(default = "default_true")]
    pub strict_media_sources: bool,
    /// Prompts (and the test number's tone) start when the caller's first RTP packet is
    /// accepted, or this long after answer at the latest (0: at once).
    #[serde(default = "default_prompt_wait_ms")]
    pub prompt_wait_ms: u64,
}

fn default_prompt_wait_ms() -> u64 {
    1000
}

fn default_true() -> bool {
    true
}

fn default_batch_interval_us() -> u64 {
    500
}

/// The HTTP admin API: where it listens, the bearer token it wants, and its bounds on
/// clients (slow or many connections cannot hold it).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Listen address; empty turns the API off.
    pub listen: String,
    /// Bearer token; empty means the one generated into `<data_dir>/admin.token`.
    pub token: String,
    /// Connections open at once, in total and from one address; more are closed at once.
    pub max_connections: usize,
    pub max_connections_per_host: usize,
    /// A request's headers must arrive within this.
    pub header_timeout_ms: u64,
    /// A request's body must arrive and its answer be made within this (else 408).
    pub request_timeout_ms: u64,
    /// The longest a connection stays open.
    pub connection_lifetime_s: u64,
    /// Serve HTTPS with `[tls]`'s certificate instead of plain HTTP.
    pub tls: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: String::new(),
            token: String::new(),
            max_connections: 256,
            max_connections_per_host: 32,
            header_timeout_ms: 10_000,
            request_timeout_ms: 60_000,
            connection_lifetime_s: 600,
            tls: false,
        }
    }
}

impl AdminConfig {
    /// The listen address, `None` when the API is off.
    pub fn address(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if self.listen.trim().is_empty() {
            return Ok(None);
        }
        self.listen.trim().parse().map(Some).map_err(|_| {
            ConfigError::Invalid(format!("admin.listen {:?} is not ADDR:PORT", self.listen))
        })
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:<redacted>@host/db`, and a
/// `password=` parameter of the query likewise.
pub fn redact_url_password(url: &str) -> String {
    let (address, query) = match url.split_once('?') {
        Some((address, query)) => (address, Some(query)),
        None => (url, None),
    };
    let address = redact_credentials(address);
    let Some(query) = query else {
        return address;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}={REDACTED}"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{address}?{}", query.join("&"))
}

fn redact_credentials(address: &str) -> String {
    let Some((scheme, rest)) = address.split_once("://") else {
        return address.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return address.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:{REDACTED}@{host}"),
        None => address.to_owned(),
    }
}

/// `[backup]`: the running switch copies its SQLite ledger into `dir` every `every_s` seconds
/// (0: never), keeping the newest `keep` copies.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    pub every_s: u64,
    /// Relative to the data directory when not absolute.
    pub dir: PathBuf,
    pub keep: usize,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            every_s: 0,
            dir: PathBuf::from("backups"),
            keep: 7,
        }
    }
}

/// `[tls]`: the certificate SIP over TLS and HTTPS present, and whom carriers' certificates
/// must chain to. Paths are relative to the data directory when not absolute. The certificate
/// is read again on SIGHUP and when its files change (`reload_check_s`), without a restart.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// PEM roots carriers' certificates must chain to; empty: Mozilla's roots.
    pub ca_file: PathBuf,
    /// How often the certificate files are checked for a change (0: only on SIGHUP).
    pub reload_check_s: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            ca_file: PathBuf::new(),
            reload_check_s: 10,
        }
    }
}

/// `[notifications]`: e-mail through an SMTP server. Mails are queued in the ledger and sent
/// by a task of their own, so a slow or absent mail server never delays a call.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationsConfig {
    /// `smtp://[user:password@]host[:port]` (plain, or `?tls=starttls` to require STARTTLS),
    /// `smtps://...` (TLS from the first byte); empty: no mail is sent (they stay queued).
    pub smtp_url: String,
    /// The From address.
    pub from: String,
    /// Who hears of a carrier going down; empty: nobody.
    pub operator_email: String,
    /// Wait before the first retry of a failed send; it doubles up to an hour.
    pub retry_s: u64,
    /// How often the outbox is looked at.
    pub poll_ms: u64,
    /// Cards expiring within this many days get a warning (0: none).
    pub card_expiry_warning_days: u64,
    /// How often expiring cards are looked for.
    pub expiry_check_s: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            smtp_url: String::new(),
            from: "Talktime <talktime@localhost>".to_owned(),
            operator_email: String::new(),
            retry_s: 60,
            poll_ms: 1_000,
            card_expiry_warning_days: 7,
            expiry_check_s: 3_600,
        }
    }
}

/// `[portal]`: the customer portal's self-service (the portal itself is always on, under
/// `/portal` of the admin listener).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortalConfig {
    /// Anyone may open a pinless account at `/portal/signup` (off by default: an operator
    /// chooses to take strangers).
    pub signup: bool,
    /// The reseller whose tree signed-up accounts join (its name); empty: the operator's own.
    pub signup_reseller: String,
    /// The currency of accounts signed up without a reseller.
    pub signup_currency: String,
    /// The number a customer calls to confirm a caller ID (shown in the portal).
    pub access_number: String,
    /// How long a caller-ID confirmation code works.
    pub claim_minutes: u64,
    /// Card payments: the payment provider's API base URL (its checkout-session API:
    /// `POST /v1/checkout/sessions`, `GET /v1/checkout/sessions/{id}`, signed `checkout.
    /// session.completed` notifications to `/portal/payments/notify`); empty: off.
    pub payment_api: String,
    /// A file holding the provider's secret API key (or `TALKTIME_PAYMENT_KEY`).
    pub payment_key_file: String,
    /// A file holding the secret that signs the provider's notifications (or
    /// `TALKTIME_PAYMENT_SIGNING_SECRET`).
    pub payment_signing_secret_file: String,
    /// Where customers' browsers reach the portal (`https://calls.example.com`), behind a
    /// proxy; the provider sends them back there. Empty: the address the customer used.
    pub public_url: String,
    /// The smallest and largest card payment, in the account's currency.
    pub payment_min: String,
    pub payment_max: String,
    /// The designs customers choose from when they buy a gift card in the portal (empty: they
    /// cannot buy one there).
    pub gift_card_designs: Vec<String>,
    /// How often calls' bonus points are awarded (`talktime points rule`); 0: never here
    /// (another node does it).
    pub points_sweep_s: u64,
}

impl Default for PortalConfig {
    fn default() -> Self {
        PortalConfig {
            signup: false,
            signup_reseller: String::new(),
            signup_currency: "USD".to_owned(),
            access_number: String::new(),
            claim_minutes: 15,
            payment_api: String::new(),
            payment_key_file: String::new(),
            payment_signing_secret_file: String::new(),
            public_url: String::new(),
            payment_min: "5".to_owned(),
            payment_max: "200".to_owned(),
            points_sweep_s: 30,
            gift_card_designs: vec![
                "Birthday".to_owned(),
                "Thank you".to_owned(),
                "Holidays".to_owned(),
            ],
        }
    }
}

/// `[radius]`: where the RADIUS server listens and which gateways it answers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RadiusConfig {
    /// Access-Request address (ADDR:PORT, usually port 1812); empty: off.
    pub auth_listen: String,
    /// Accounting-Request address (usually port 1813); empty: off.
    pub acct_listen: String,
    /// The gateways answered; nobody else is (their datagrams are dropped and counted).
    pub clients: Vec<talktime_radius::ClientConfig>,
    /// A call whose Accounting-Stop has not come this long after its credit time ran out is
    /// closed by the switch: billed to its limit from its Start (nothing without a Start).
    pub stop_grace_s: u64,
}

impl Default for RadiusConfig {
    fn default() -> Self {
        RadiusConfig {
            auth_listen: String::new(),
            acct_listen: String::new(),
            clients: Vec::new(),
            stop_grace_s: 60,
        }
    }
}

impl RadiusConfig {
    fn address(key: &str, text: &str) -> Result<Option<SocketAddr>, ConfigError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|_| ConfigError::Invalid(format!("radius.{key} {text:?} is not ADDR:PORT")))
    }

    pub fn auth_address(&self) -> Result<Option<SocketAddr>, ConfigError> {
        Self::address("auth_listen", &self.auth_listen)
    }

    pub fn acct_address(&self) -> Result<Option<SocketAddr>, ConfigError> {
        Self::address("acct_listen", &self.acct_listen)
    }
}

/// SIP subscribers (`talktime subscribers add`): REGISTER and INVITE are challenged with
/// digest authentication (MD5, qop=auth); an authenticated INVITE to any number that is not an
/// access number is a call billed to the subscriber's account, without the IVR.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribersConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The digest realm; passwords are kept as hashes made with it.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// A nonce is good for this long (then the phone is told it is stale and answers again).
    #[serde(default = "default_nonce_lifetime_s")]
    pub nonce_lifetime_s: u64,
    /// The longest registration granted.
    #[serde(default = "default_max_expires_s")]
    pub max_expires_s: u32,
    /// The dial plan subscribers' calls are routed with.
    #[serde(default = "default_dial_plan")]
    pub dial_plan: String,
}

impl Default for SubscribersConfig {
    fn default() -> Self {
        SubscribersConfig {
            enabled: true,
            realm: default_realm(),
            nonce_lifetime_s: default_nonce_lifetime_s(),
            max_expires_s: default_max_expires_s(),
            dial_plan: default_dial_plan(),
        }
    }
}

fn default_realm() -> String {
    "talktime".into()
}

fn default_nonce_lifetime_s() -> u64 {
    300
}

fn default_max_expires_s() -> u32 {
    3600
}

/// Calling callers back.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackConfig {
    /// How long after the refused call the caller is called back (their phone must be free).
    #[serde(default = "default_callback_delay_ms")]
    pub delay_ms: u64,
    /// How long the call back rings before it is given up.
    #[serde(default = "default_callback_ring_s")]
    pub ring_s: u64,
    /// Ringing of the called leg paid for in advance (the caller leg runs meanwhile).
    #[serde(default = "default_ring_allowance_s")]
    pub ring_allowance_s: u64,
    /// Callbacks waiting or ringing at once, at most (more are refused with 503).
    #[serde(default = "default_callback_pending")]
    pub max_pending: usize,
}

fn default_ring_allowance_s() -> u64 {
    15
}

impl Default for CallbackConfig {
    fn default() -> Self {
        CallbackConfig {
            delay_ms: default_callback_delay_ms(),
            ring_s: default_callback_ring_s(),
            ring_allowance_s: default_ring_allowance_s(),
            max_pending: default_callback_pending(),
        }
    }
}

fn default_callback_delay_ms() -> u64 {
    3_000
}

fn default_callback_ring_s() -> u64 {
    40
}

fn default_callback_pending() -> usize {
    200
}

impl Config {
    /// The access number whose IVR a web callback runs: the first callback line.
    pub fn callback_access(&self) -> Option<&AccessNumber> {
        self.access_numbers.iter().find(|access| access.callback)
    }
}

/// Graceful stop: new calls are refused with 503 at once, calls up may run `drain_s` more
/// seconds, then each is ended with BYE on both legs, billed and recorded before exit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShutdownConfig {
    /// Seconds calls may go on after the signal; 0 ends them at once.
    #[serde(default = "default_drain_s")]
    pub drain_s: u64,
}

fn default_drain_s() -> u64 {
    60
}

impl Default for ShutdownConfig {
    fn default() -> Self {
        ShutdownConfig {
            drain_s: default_drain_s(),
        }
    }
}

/// A trusted peer: an address or prefix (`192.0.2.10`, `10.0.0.0/8`, `::1`) and what its
/// traffic may do. Everything not listed is an untrusted source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    pub address: String,
    /// May place calls to the access numbers (an access gateway, a softphone LAN).
    #[serde(default)]
    pub access: bool,
    /// Its caller ID (P-Asserted-Identity or From) authenticates pinless callers and DID
    /// forwarding; from anyone else the PIN is asked.
    #[serde(default)]
    pub trusted_caller_id: bool,
    /// New calls a second from this peer, in place of `[admission]`'s per-source limit
    /// (0: none).
    #[serde(default)]
    pub calls_per_second: Option<u32>,
    /// Calls up at once from this peer, in place of `[admission]`'s (0: none).
    #[serde(default)]
    pub max_calls: Option<u32>,
}

/// Admission control (issue 20): how many calls a source may start and hold, and the switch.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdmissionConfig {
    /// New calls a second from one source address (0: no limit).
    pub calls_per_second_per_source: u32,
    /// Calls up at once from one source address (0: no limit).
    pub calls_per_source: u32,
    /// Calls up at once on this switch (0: no limit).
    pub max_calls: u32,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            calls_per_second_per_source: 10,
            calls_per_source: 100,
            max_calls: 5000,
        }
    }
}

/// What a source address may do, from the `[[peers]]` it matches (the most specific wins).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerTrust {
    pub access: bool,
    pub trusted_caller_id: bool,
    /// The peer's own admission limits, when its entry sets them.
    pub calls_per_second: Option<u32>,
    pub max_calls: Option<u32>,
}

impl PeerConfig {
    /// The prefix length this peer matches `address` with, if it does.
    fn matches(&self, address: std::net::IpAddr) -> Result<Option<u8>, ConfigError> {
        let invalid = || ConfigError::Invalid(format!("peers.address {:?}", self.address));
        let (network, length) = match self.address.split_once('/') {
            Some((network, length)) => (network, Some(length)),
            None => (self.address.as_str(), None),
        };
        let network: std::net::IpAddr = network.trim().parse().map_err(|_| invalid())?;
        let bits: u8 = if network.is_ipv4() { 32 } else { 128 };
        let length = match length {
            Some(text) => text.trim().parse::<u8>().map_err(|_| invalid())?,
            None => bits,
        };
        if length > bits {
            return Err(invalid());
        }
        let matched = match (network, address) {
            (std::net::IpAddr::V4(net), std::net::IpAddr::V4(addr)) => same_prefix(
                u128::from(u32::from(net)),
                u128::from(u32::from(addr)),
                length,
                32,
            ),
            (std::net::IpAddr::V6(net), std::net::IpAddr::V6(addr)) => {
                same_prefix(u128::from(net), u128::from(addr), length, 128)
            }
            _ => false,
        };
        Ok(matched.then_some(length))
    }
}

fn same_prefix(network: u128, address: u128, length: u8, bits: u8) -> bool {
    if length == 0 {
        return true;
    }
    let shift = u32::from(bits - length);
    network >> shift == address >> shift
}

impl Config {
    /// The trust of a source address: its most specific matching peer's, else none.
    pub fn peer_trust(&self, address: std::net::IpAddr) -> PeerTrust {
        let address = match address {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, std::net::IpAddr::V4),
            v4 => v4,
        };
        self.peers
            .iter()
            .filter_map(|peer| Some((peer.matches(address).ok()??, peer)))
            .max_by_key(|(length, _)| *length)
            .map(|(_, peer)| PeerTrust {
                access: peer.access,
                trusted_caller_id: peer.trusted_caller_id,
                calls_per_second: peer.calls_per_second,
                max_calls: peer.max_calls,
            })
            .unwrap_or_default()
    }

    /// Every `[[peers]]` address parses.
    pub fn check_peers(&self) -> Result<(), ConfigError> {
        for peer in &self.peers {
            peer.matches(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))?;
        }
        Ok(())
    }
}

/// Node identity and leases: each switch refreshes a heartbeat row; the open calls of a node
/// whose heartbeat is older than the lease are billed to that heartbeat and hung up by the
/// node at its next start, or by any other node on the database once the lease is over.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This switch's name; empty derives one from the host name and the data directory.
    #[serde(default)]
    pub node_id: String,
    /// Seconds without a heartbeat after which a node counts as dead.
    #[serde(default = "default_node_lease_s")]
    pub node_lease_s: u64,
    /// How often this node writes its heartbeat, in milliseconds.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// How often this node checks whether carriers or dial plans changed in the database
    /// (another node, or the CLI, changed them); a change made through this node's own API
    /// applies at once.
    #[serde(default = "default_routing_check_ms")]
    pub routing_check_ms: u64,
}

fn default_routing_check_ms() -> u64 {
    2000
}

fn default_node_lease_s() -> u64 {
    10
}

fn default_heartbeat_ms() -> u64 {
    1000
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_id: String::new(),
            node_lease_s: default_node_lease_s(),
            heartbeat_ms: default_heartbeat_ms(),
            routing_check_ms: default_routing_check_ms(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
    /// SQLite: how long a write waits for another process's lock before it fails (and, for a
    /// settle, is retried with back-off).
    #[serde(default = "default_busy_timeout_ms")]
    pub busy_timeout_ms: u64,
    /// The key file of the PIN hashes (64 hex digits, 0600; created when missing). Relative
    /// paths are in `data_dir`; the default is `data_dir/pin.key`. `TALKTIME_PIN_KEY` in the
    /// environment takes precedence. Every node of one PostgreSQL ledger needs the same key.
    #[serde(default)]
    pub pin_key_file: Option<PathBuf>,
    /// Connections to the database. SQLite has one writer whatever this says (the rest
    /// serve reads); on PostgreSQL every call's transactions wait on the network and the
    /// server's commits, so a node's throughput grows with it (docs/PERFORMANCE.md).
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// Where the ledger's thread and the SQLite writer connection's thread run (Linux).
    /// Every write statement is a hand-off between the two; on one CPU a hand-off is a
    /// context switch instead of a wake-up of another CPU (docs/PERFORMANCE.md).
    #[serde(default)]
    pub writer_cpu: WriterCpu,
    /// PostgreSQL: a call's statements on pipelined connections (several sent before the
    /// first answer is read); off, one at a time through the pool like the rest.
    #[serde(default = "default_pipeline")]
    pub pipeline: bool,
}

fn default_pipeline() -> bool {
    true
}

/// `[database] writer_cpu`: `"auto"` (the default: on one CPU of those the process may use,
/// for a SQLite ledger on a machine of two or more), `"off"` (where the kernel puts them),
/// or a CPU number (both threads there; with PostgreSQL the ledger's thread only).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WriterCpu {
    #[default]
    Auto,
    Off,
    Cpu(usize),
}

impl<'de> Deserialize<'de> for WriterCpu {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Written {
            Cpu(usize),
            Word(String),
        }
        match Written::deserialize(deserializer)? {
            Written::Cpu(cpu) => Ok(WriterCpu::Cpu(cpu)),
            Written::Word(word) if word == "auto" => Ok(WriterCpu::Auto),
            Written::Word(word) if word == "off" => Ok(WriterCpu::Off),
            Written::Word(word) => Err(serde::de::Error::custom(format!(
                "writer_cpu is \"auto\", \"off\" or a CPU number, not {word:?}"
            ))),
        }
    }
}

fn default_busy_timeout_ms() -> u64 {
    10_000
}

fn default_pool_size() -> u32 {
    8
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsConfig {
    pub data_dir: PathBuf,
    pub prompts_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub filter: String,
    /// `text` (the default) or `json`: one JSON object a line, the call's key on every line
    /// about a call.
    #[serde(default)]
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// What replaces a secret in printed configuration.
pub const REDACTED: &str = "<redacted>";

impl Config {
    /// A copy fit to print (`talktime config`): the admin token, the demo PIN, the database
    /// URL's password and the RADIUS secrets replaced (carrier passwords never print).
    pub fn redacted(&self) -> Config {
        let mut copy = self.clone();
        let hide = |secret: &mut String| {
            if !secret.is_empty() {
                *secret = REDACTED.to_owned();
            }
        };
        hide(&mut copy.admin.token);
        hide(&mut copy.demo.pin);
        for client in &mut copy.radius.clients {
            hide(&mut client.secret);
        }
        copy.database.url = redact_url_password(&copy.database.url);
        copy.notifications.smtp_url = redact_url_password(&copy.notifications.smtp_url);
        copy
    }

    /// The embedded defaults alone.
    pub fn embedded() -> Result<Self, ConfigError> {
        Self::from_layers(None)
    }

    /// The embedded defaults with `text` (the file at `path`, read by the shell) merged over
    /// them.
    pub fn from_file_text(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let overlay = parse_table(text, path)?;
        Self::from_layers(Some(overlay))
    }

    fn from_layers(overlay: Option<toml::Table>) -> Result<Self, ConfigError> {
        let mut base = parse_table(EMBEDDED_DEFAULTS, Path::new("<embedded defaults>"))?;
        if let Some(overlay) = overlay {
            merge(&mut base, overlay);
        }
        let config: Config = toml::Value::Table(base)
            .try_into()
            .map_err(|error: toml::de::Error| ConfigError::Invalid(error.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the relations between values that types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_peers()?;
        for (key, text) in [
            ("billing.max_call_cost", &self.billing.max_call_cost),
            ("billing.max_daily_spend", &self.billing.max_daily_spend),
            ("alarms.account_spend", &self.alarms.account_spend),
        ] {
            if !text.trim().is_empty() && talktime_billing::parse_micros(text.trim()).is_err() {
                return Err(ConfigError::Invalid(format!(
                    "{key} {text:?} is not a decimal amount"
                )));
            }
        }
        self.radius.auth_address()?;
        self.radius.acct_address()?;
        talktime_radius::Server::new(&self.radius.clients)
            .map_err(|error| ConfigError::Invalid(error.to_string()))?;
        let admin = &self.admin;
        if admin.max_connections == 0
            || admin.max_connections_per_host == 0
            || admin.header_timeout_ms < 100
            || admin.request_timeout_ms < 100
            || admin.connection_lifetime_s == 0
        {
            return Err(ConfigError::Invalid(
                "admin: connection counts must be positive and timeouts at least 100 ms".into(),
            ));
        }
        if self.sip.udp.is_empty() && self.sip.tcp.is_empty() {
            return Err(ConfigError::Invalid(
                "sip: at least one udp or tcp listen address is needed".into(),
            ));
        }
        if self.rtp.port_min >= self.rtp.port_max || self.rtp.port_min < 1024 {
            return Err(ConfigError::Invalid(format!(
                "rtp: port range {}-{} must be ascending and above 1023",
                self.rtp.port_min, self.rtp.port_max
            )));
        }
        if !(1..=crate::shard::MAX_CORE_THREADS).contains(&self.sip.core_threads) {
            return Err(ConfigError::Invalid(format!(
                "sip: core_threads must be 1 to {}",
                crate::shard::MAX_CORE_THREADS
            )));
        }
        crate::shard::port_ranges(self.rtp.port_min, self.rtp.port_max, self.sip.core_threads)
            .map_err(|error| ConfigError::Invalid(format!("rtp: {error}")))?;
        if self.sip.t1_ms == 0 || self.sip.t2_ms < self.sip.t1_ms {
            return Err(ConfigError::Invalid(
                "sip: t1_ms must be positive and t2_ms at least t1_ms".into(),
            ));
        }
        if self.sip.min_session_expires_s == 0 {
            return Err(ConfigError::Invalid(
                "sip: min_session_expires_s must be at least 1".into(),
            ));
        }
        self.ivr
            .validate()
            .map_err(|error| ConfigError::Invalid(format!("ivr: {error}")))?;
        if self.alarms.pin_answer_delay_ms >= self.ivr.request_timeout_ms {
            // A held answer would arrive after the IVR gave up on it.
            return Err(ConfigError::Invalid(format!(
                "alarms.pin_answer_delay_ms must be below ivr.request_timeout_ms ({})",
                self.ivr.request_timeout_ms
            )));
        }
        talktime_routing::validate(&self.carriers, &self.dial_plans)
            .map_err(|errors| ConfigError::Invalid(format!("routing: {errors}")))?;
        for access in &self.access_numbers {
            if access.number.is_empty() {
                return Err(ConfigError::Invalid(
                    "access_numbers: a number is empty".into(),
                ));
            }
            self.ivr_for(access).validate().map_err(|error| {
                ConfigError::Invalid(format!("access number {}: {error}", access.number))
            })?;
        }
        Ok(())
    }

    /// The access number an INVITE's Request-URI user reaches, if any (exact match first).
    pub fn access_number(&self, user: &str) -> Option<&AccessNumber> {
        self.access_numbers
            .iter()
            .find(|access| access.number == user)
            .or_else(|| {
                self.access_numbers
                    .iter()
                    .find(|access| access.number == "*")
            })
    }

    /// The number rules for callers of one access number (its country, else the global ones).
    pub fn number_rules_for(&self, access: &AccessNumber) -> NumberRules {
        let mut rules = self.number_rules.clone();
        if let Some(country) = &access.country_code {
            rules.country_code = Some(country.clone());
        }
        if let Some(prefix) = &access.national_prefix {
            rules.national_prefix = Some(prefix.clone());
        }
        rules
    }

    /// The IVR settings for one access number.
    pub fn ivr_for(&self, access: &AccessNumber) -> IvrConfig {
        let mut ivr = self.ivr.clone();
        if !access.languages.is_empty() {
            ivr.languages = access.languages.clone();
        }
        if let Some(forwarding) = access.forwarding {
            ivr.forwarding = forwarding;
        }
        if let Some(welcome) = access.forwarding_welcome {
            ivr.forwarding_welcome = welcome;
        }
        ivr.balance_only = access.balance_only;
        ivr.recharge_only = access.recharge_only;
        ivr.retail = access.retail;
        if access.retail {
            // An agent moves money: a caller ID, which can be spoofed, never stands for its PIN.
            ivr.ani_authentication = false;
        }
        ivr
    }

    /// The database URL with a relative SQLite path resolved under the data directory.
    /// Where the PIN key file is (see [`DatabaseConfig::pin_key_file`]).
    pub fn pin_key_path(&self) -> PathBuf {
        let data_dir = &self.paths.data_dir;
        match &self.database.pin_key_file {
            Some(file) => data_dir.join(file),
            None => data_dir.join("pin.key"),
        }
    }

    pub fn database_url(&self) -> String {
        let url = &self.database.url;
        match url.strip_prefix("sqlite://") {
            Some(path) if !path.starts_with('/') && !path.starts_with(':') => format!(
                "sqlite://{}",
                self.paths
                    .data_dir
                    .join(path.split('?').next().unwrap_or(path))
                    .display()
            ),
            _ => url.clone(),
        }
    }
}

fn parse_table(text: &str, path: &Path) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|source| ConfigError::Syntax {
            path: path.to_owned(),
            source: Box::new(source),
        })
}

/// Merges `overlay` into `base`: tables recursively, every other value replaced.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(overlay_table)) => {
                merge(base_table, overlay_table)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_database_urls_password_is_redacted_wherever_it_is_written() {
        assert_eq!(
            super::redact_url_password("postgres://talk:s3cret@db:5432/ledger?sslmode=require"),
            "postgres://talk:<redacted>@db:5432/ledger?sslmode=require"
        );
        assert_eq!(
            super::redact_url_password("postgres://db/ledger?user=talk&password=s3cret&x=1"),
            "postgres://db/ledger?user=talk&password=<redacted>&x=1"
        );
        assert_eq!(
            super::redact_url_password("sqlite://talktime.sqlite3"),
            "sqlite://talktime.sqlite3"
        );
    }
    use super::*;

    #[test]
    fn embedded_defaults_are_valid() {
        let config = Config::embedded().unwrap();
        assert_eq!(config.sip.udp, vec!["0.0.0.0:5060".parse().unwrap()]);
        assert_eq!(config.sip.t1_ms, 500);
        assert_eq!(config.database_url(), "sqlite://data/talktime.sqlite3");
    }

    #[test]
    fn the_most_specific_peer_decides_and_nobody_else_is_trusted() {
        let overlay = parse_table(
            "[[peers]]\naddress = \"10.0.0.0/8\"\naccess = true\n\n\
             [[peers]]\naddress = \"10.1.2.3\"\naccess = true\ntrusted_caller_id = true\n",
            Path::new("x"),
        )
        .unwrap();
        let config = Config::from_layers(Some(overlay)).unwrap();
        let trust = |text: &str| config.peer_trust(text.parse().unwrap());
        assert_eq!(
            trust("10.1.2.3"),
            PeerTrust {
                access: true,
                trusted_caller_id: true,
                ..PeerTrust::default()
            }
        );
        assert_eq!(
            trust("10.9.9.9"),
            PeerTrust {
                access: true,
                ..PeerTrust::default()
            }
        );
        assert_eq!(
            trust("127.0.0.1"),
            PeerTrust::default(),
            "replaced the shipped list"
        );
        assert_eq!(trust("::ffff:10.1.2.3"), trust("10.1.2.3"));
        let embedded = Config::embedded().unwrap();
        assert!(
            embedded
                .peer_trust("127.0.0.2".parse().unwrap())
                .trusted_caller_id
        );
        assert!(!embedded.peer_trust("192.0.2.1".parse().unwrap()).access);
        let bad = parse_table("[[peers]]\naddress = \"10.0.0.0/40\"\n", Path::new("y")).unwrap();
        assert!(Config::from_layers(Some(bad)).is_err());
    }

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let mut base = parse_table(EMBEDDED_DEFAULTS, Path::new("x")).unwrap();
        let overlay = parse_table("[sip]\nt1_ms = 100\n", Path::new("y")).unwrap();
        merge(&mut base, overlay);
        let config: Config = toml::Value::Table(base).try_into().unwrap();
        assert_eq!(config.sip.t1_ms, 100);
        assert_eq!(config.sip.t2_ms, 4000);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let error = Config::from_file_text("[sip]\nt1ms = 100\n", Path::new("bad.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("t1ms"), "{error}");
    }

    #[test]
    fn an_inverted_port_range_is_refused() {
        let mut config = Config::embedded().unwrap();
        config.rtp.port_min = 30000;
        config.rtp.port_max = 20000;
        assert!(config.validate().is_err());
    }
}
