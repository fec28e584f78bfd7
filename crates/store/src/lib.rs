//! The Talktime prepaid ledger: accounts, cards, caller IDs, tariffs and rates, an
//! append-only transaction log, call reservations and CDRs, on embedded SQLite (default) or
//! PostgreSQL.
//!
//! Units: money is `i64` micro-units (1 currency unit = 1,000,000 micros), times are epoch
//! milliseconds passed in by the caller, PINs and phone numbers are [`talktime_pii::Pii`].
//! The rating math lives in the billing crate; this crate only calls a `decide` closure
//! ([`Store::authorize`]) and stores tariff settings as opaque JSON text.
//!
//! Invariant: an account's `balance_micros` always equals the sum of its transaction rows
//! (both are written in one database transaction; [`Store::check_balances`] verifies it).
//!
//! # Why an enum over concrete pools, not `sqlx::Any`
//! The two backends need different locking (`BEGIN IMMEDIATE` on SQLite, `SELECT ... FOR
//! UPDATE` on PostgreSQL) and different connection setup (WAL, `synchronous`, busy timeout),
//! which `Any` hides; `Any` also mis-decodes some column types on each backend and adds a
//! conversion layer to every row on the hot authorize/settle path. [`Store`] therefore holds
//! a `SqlitePool` or a `PgPool`, and an internal macro expands each query, written once with
//! `$n` placeholders (which SQLite accepts too), for both connection types. The schema uses
//! only BIGINT/INTEGER and TEXT columns so the same Rust types decode on both.
//!
//! # Use
//! ```no_run
//! # async fn example() -> Result<(), talktime_store::StoreError> {
//! use talktime_store::{Decision, Payer, Store};
//! let store = Store::open("/var/lib/talktime").await?; // or "postgres://user@host/db"
//! let started_ms = 1_700_000_000_000;
//! store.reconcile(started_ms, started_ms).await?; // close holds left by a crash
//! let hold = store
//!     .authorize("call-id@host", Payer::Card(42), started_ms, |available| {
//!         // billing computes the talk-time limit from `available`
//!         Ok(Decision::new(available.available_micros, 60_000))
//!     })
//!     .await?;
//! store.settle(&hold.call_id, 120_000, &[], started_ms + 60_000).await?;
//! # Ok(()) }
//! ```
//!
//! Migrations live in `migrations/sqlite` and `migrations/postgres` (they differ only in how
//! an auto-increment key is spelled); a test compares their tables and columns.

mod backend;
mod backup;
mod caller_services;
mod cards;
mod cdr;
mod checkpointer;
mod coupons;
mod customers;
mod error;
mod exec;
mod ledger;
mod model;
mod nodes;
mod notifications;
mod payments;
mod pg_tls;
mod pin_key;
mod pipeline;
mod points;
pub use talktime_billing::{DecimalError, MAX_FRACTION_DIGITS, format_micros, parse_micros};
mod plans;
mod recovery;
mod resellers;
mod reservation;
mod routing_docs;
mod self_service;
mod subscribers;
mod tariffs;
mod tickets;
mod users;

pub use backend::{
    BackendKind, SQLITE_FILE_NAME, SQLITE_WRITER_THREAD, Store, StoreOptions, create_private_dir,
};
pub use backup::LedgerSummary;
pub use caller_services::{
    GiftCardPurchase, PinChange, Redemption, SPEED_DIAL_SLOTS, VOUCHER_CODE_LENGTHS, VoucherBatch,
    VoucherBatchSpec, VoucherRow,
};
pub use cards::{CardBatch, CardBatchSpec, PIN_LENGTHS};
pub use cdr::{Cdr, CdrCursor, CdrFilter, TrafficGrouping, TrafficRow};
pub use coupons::{CouponRecharge, CouponRefusal, CouponRow, NewCoupon, coupon_bonus};
pub use customers::{CustomerSession, PortalMessage};
pub use error::StoreError;
pub use ledger::{AccountLimits, LowBalanceRule, MAX_AMOUNT_MICROS, RechargeOutcome};
pub use model::{
    Account, AccountStatus, BalanceMismatch, CallerIdMatch, Card, CardKind, CardStatus, ExpiryRule,
    LedgerEntry, LockoutPolicy, MICROS_PER_UNIT, NewAccount, NewCard, PinFailureState, Rate,
    ReservationState, Tariff, TransactionKind,
};
pub use nodes::{NodeRow, NodeState};
pub use notifications::{NewNotification, Notification, NotificationKind, NotifySettings};
pub use payments::{PaymentCompletion, PaymentRow};
pub use pin_key::{PIN_KEY_ENV, PIN_KEY_FILE_NAME, PinKey};
pub use plans::{AccountRules, DuePlan, PayerProfile, PlanRow};
pub use points::{
    MinutesRedemption, POINTS_SETTLE_MARGIN_MS, PointsLine, PointsMinutes, PointsRedemption,
    PointsScope,
};
pub use recovery::{Closed, Orphan};
pub use resellers::{
    Commission, DEFAULT_MAX_RESELLER_DEPTH, LevelAvailable, LevelLine, NewReseller, Reseller,
    ResellerLevel, ResellerTerms, StatementLine, Transfer,
};
pub use reservation::{
    Available, Decision, FirstUse, Payer, ReconcileReport, Refusal, ReleaseOutcome, Reservation,
    SettleExtras, SettleOutcome,
};
pub use routing_docs::{RoutingDocument, RoutingKind, RoutingSnapshot};
pub use self_service::{CallerIdClaim, ReferralRewards, SignUp, SignUpOutcome, login_email};
pub use subscribers::{MAX_USERNAME_LENGTH, Subscriber};
pub use tariffs::{ImportOptions, ImportReport, RateExtrasColumns, RowError, TARIFF_CSV_COLUMNS};
pub use tickets::{
    NewTicket, SavedAnswer, Ticket, TicketFilter, TicketMessage, TicketQueue, TicketState,
};
pub use users::{AuditEntry, Role, SessionRow, User, UserLogin};
