//! Rows of the ledger as Rust types. Money is `i64` micro-units (1 unit = 1,000,000 micros),
//! times are epoch milliseconds, PINs and phone numbers are [`Pii`].

use talktime_pii::Pii;

use crate::error::StoreError;

/// Micro-units per currency unit (one home: the billing crate).
pub use talktime_billing::MICROS_PER_UNIT;

macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident, $column:literal { $($(#[$variant_meta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant),+
        }

        impl $name {
            /// The text stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub(crate) fn parse(text: &str) -> Result<Self, StoreError> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(StoreError::Corrupt { column: $column, value: other.to_owned() }),
                }
            }
        }
    };
}
pub(crate) use text_enum;

text_enum!(
    /// Whether an account may be used.
    AccountStatus, "accounts.status" {
        /// Usable.
        Active => "active",
        /// Temporarily refused (fraud, operator decision).
        Blocked => "blocked",
        /// Permanently closed.
        Closed => "closed",
    }
);

text_enum!(
    /// Refillable cards can be recharged; disposable ones never are (seed 002, tip 3).
    CardKind, "cards.kind" {
        /// May be recharged.
        Refillable => "refillable",
        /// Thrown away when empty.
        Disposable => "disposable",
    }
);

text_enum!(
    /// Life cycle of a card.
    CardStatus, "cards.status" {
        /// Generated, never used.
        New => "new",
        /// Used at least once.
        Active => "active",
        /// Refused by the operator.
        Blocked => "blocked",
        /// Past its expiry.
        Expired => "expired",
    }
);

text_enum!(
    /// Why a balance changed. Every balance change is one transaction row.
    TransactionKind, "transactions.kind" {
        /// Fee charged on a card's first use.
        Activation => "activation",
        /// The rated cost of a call.
        CallCharge => "call_charge",
        /// A periodic maintenance fee.
        Maintenance => "maintenance",
        /// Credit bought (including a card's initial value).
        Recharge => "recharge",
        /// Credit given back.
        Refund => "refund",
        /// An operator correction, either sign.
        Adjustment => "adjustment",
        /// Credit a reseller moved to one of its customers (negative on the reseller).
        Transfer => "transfer",
        /// What the vendor pays a reseller on its customers' calls or payments.
        Commission => "commission",
        /// Credit a promotion coupon added to a recharge.
        Promotion => "promotion",
        /// A referral's reward, to the customer who referred and to the newcomer.
        Referral => "referral",
        /// Credit bought with bonus points.
        Points => "points",
        /// Credit spent on a gift card (a voucher for somebody else).
        GiftCard => "gift_card",
    }
);

text_enum!(
    /// State of a reservation.
    ReservationState, "reservations.state" {
        /// Credit held for a call in progress.
        Open => "open",
        /// The call was charged.
        Settled => "settled",
        /// The hold was dropped without a charge.
        Released => "released",
    }
);

/// When a card stops working: at a fixed time, a period after first use, both (whichever
/// comes first) or never (both `None`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpiryRule {
    /// Absolute expiry, epoch ms.
    pub expires_at_ms: Option<i64>,
    /// Validity counted from the first use, ms.
    pub valid_after_first_use_ms: Option<i64>,
}

impl ExpiryRule {
    /// The instant the card expires given its first use, if any.
    pub fn expiry_ms(&self, first_used_at_ms: Option<i64>) -> Option<i64> {
        let after_use = match (self.valid_after_first_use_ms, first_used_at_ms) {
            (Some(validity), Some(first_use)) => Some(first_use.saturating_add(validity)),
            _ => None,
        };
        match (self.expires_at_ms, after_use) {
            (Some(fixed), Some(relative)) => Some(fixed.min(relative)),
            (fixed, relative) => fixed.or(relative),
        }
    }
}

/// What [`crate::Store::create_account`] needs.
#[derive(Clone, Debug)]
pub struct NewAccount {
    /// Display name.
    pub name: String,
    /// ISO currency code of the balance.
    pub currency: String,
    /// Below this balance the caller IDs of the account are no longer recognised (seed 002, tip 1).
    pub caller_id_min_balance_micros: i64,
    /// Calls at once; 0 means unlimited.
    pub concurrency_limit: i64,
    /// An owner account whose balance also bounds this one's spending (seed 002, tip 2).
    pub owner_account_id: Option<i64>,
    /// Tariff for pinless calls.
    pub tariff_id: Option<i64>,
}

impl NewAccount {
    /// An account with one call at a time, no owner, no caller-ID threshold.
    pub fn new(name: impl Into<String>, currency: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            currency: currency.into(),
            caller_id_min_balance_micros: 0,
            concurrency_limit: 1,
            owner_account_id: None,
            tariff_id: None,
        }
    }
}

/// An account as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// ISO currency code.
    pub currency: String,
    /// Cached balance; always the sum of the account's transaction rows.
    pub balance_micros: i64,
    /// Caller-ID recognition threshold.
    pub caller_id_min_balance_micros: i64,
    /// Calls at once; 0 means unlimited.
    pub concurrency_limit: i64,
    /// Owner account bounding the spending.
    pub owner_account_id: Option<i64>,
    /// Tariff for pinless calls.
    pub tariff_id: Option<i64>,
    /// Status.
    pub status: AccountStatus,
    /// Creation time.
    pub created_at_ms: i64,
    /// Where a DID-forwarding access number connects this account's registered callers
    /// (seed 003); set with [`crate::Store::set_forward_destination`].
    pub forward_destination: Option<Pii<String>>,
    /// The IVR language its holder chose last (with `remember_language`), as a code.
    pub ivr_language: Option<String>,
}

/// What [`crate::Store::create_card`] needs. The card gets its own account holding its balance.
#[derive(Clone, Debug)]
pub struct NewCard {
    /// The PIN (unique).
    pub pin: Pii<String>,
    /// Refillable or disposable.
    pub kind: CardKind,
    /// Tariff for calls on this card.
    pub tariff_id: Option<i64>,
    /// Expiry.
    pub expiry: ExpiryRule,
    /// Initial credit, posted as a recharge row (0 for none).
    pub initial_value_micros: i64,
    /// Currency of the card's balance.
    pub currency: String,
    /// Owner account whose balance also bounds the card (seed 002, tip 2).
    pub owner_account_id: Option<i64>,
    /// Caller-ID recognition threshold of the card's account.
    pub caller_id_min_balance_micros: i64,
    /// Calls at once on the card; 1 by default ("no more than one call at a time").
    pub concurrency_limit: i64,
    /// Charged with the card's first answered call, once (seed 000).
    pub activation_fee_micros: i64,
}

impl NewCard {
    /// A refillable card, one call at a time, never expiring, without owner.
    pub fn new(pin: Pii<String>, currency: impl Into<String>, initial_value_micros: i64) -> Self {
        Self {
            pin,
            kind: CardKind::Refillable,
            tariff_id: None,
            expiry: ExpiryRule::default(),
            initial_value_micros,
            currency: currency.into(),
            owner_account_id: None,
            caller_id_min_balance_micros: 0,
            concurrency_limit: 1,
            activation_fee_micros: 0,
        }
    }
}

/// A card as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Card {
    /// Id.
    pub id: i64,
    /// The account holding the card's balance (the PIN itself is not kept: see `pin_key`).
    pub account_id: i64,
    /// The batch it was generated in.
    pub batch_id: Option<i64>,
    /// Tariff for calls.
    pub tariff_id: Option<i64>,
    /// Refillable or disposable.
    pub kind: CardKind,
    /// Status as stored (see [`Card::is_expired`] for the time-based check).
    pub status: CardStatus,
    /// Expiry rule.
    pub expiry: ExpiryRule,
    /// First use: set by the settle of its first answered call (or [`crate::Store::activate_card`]).
    pub first_used_at_ms: Option<i64>,
    /// Creation time.
    pub created_at_ms: i64,
    /// Charged with the first answered call.
    pub activation_fee_micros: i64,
}

impl Card {
    /// The activation fee its next answered call pays: all of it until the first use.
    pub fn activation_fee_due(&self) -> i64 {
        if self.first_used_at_ms.is_none() {
            self.activation_fee_micros
        } else {
            0
        }
    }

    /// True when the card is expired at `now_ms`, by status or by its rule.
    pub fn is_expired(&self, now_ms: i64) -> bool {
        self.status == CardStatus::Expired
            || self
                .expiry
                .expiry_ms(self.first_used_at_ms)
                .is_some_and(|expiry| now_ms >= expiry)
    }
}

/// One row of the transaction log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Id, increasing.
    pub id: i64,
    /// The account.
    pub account_id: i64,
    /// Why.
    pub kind: TransactionKind,
    /// Signed change: credits positive, debits negative.
    pub amount_micros: i64,
    /// The balance after this row.
    pub balance_after_micros: i64,
    /// The call, for call charges.
    pub call_id: Option<String>,
    /// Free text: a payment reference, the batch, the operator.
    pub reference: Option<String>,
    /// When.
    pub created_at_ms: i64,
}

/// An account whose cached balance differs from the sum of its transaction rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceMismatch {
    /// The account.
    pub account_id: i64,
    /// The cached balance column.
    pub cached_micros: i64,
    /// The sum of its transaction rows.
    pub sum_micros: i64,
}

/// The result of a caller-ID lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerIdMatch {
    /// The account the number is registered to.
    pub account_id: i64,
    /// The card whose account it is, if any.
    pub card_id: Option<i64>,
    /// False when the balance is under the recognition threshold or the account is not active:
    /// the caller must then enter a PIN (seed 002, tip 1).
    pub recognised: bool,
    /// The balance at lookup.
    pub balance_micros: i64,
    /// The account's DID-forwarding destination, if it has one.
    pub forward_destination: Option<Pii<String>>,
    /// The account is active (not blocked or closed).
    pub active: bool,
    /// The balance under which the number is not recognised.
    pub minimum_micros: i64,
    pub currency: String,
    /// The IVR language the account chose last, if any.
    pub ivr_language: Option<String>,
}

/// Failed-PIN lockout rule per calling number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Failures within `window_ms` that lock the number out.
    pub max_failures: i64,
    /// Failures older than this are forgotten.
    pub window_ms: i64,
    /// How long the lockout lasts.
    pub lockout_ms: i64,
}

/// Failed-PIN state of a calling number after a failure was recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinFailureState {
    /// Failures in the current window.
    pub failures: i64,
    /// Locked out until then, if locked.
    pub locked_until_ms: Option<i64>,
}

/// A tariff: rates live in their own table; `settings_json` is opaque to the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tariff {
    /// Id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// ISO currency code of its rates.
    pub currency: String,
    /// Tariff-level settings, JSON that the billing crate deserialises.
    pub settings_json: String,
    /// Creation time.
    pub created_at_ms: i64,
}

/// One destination rate of a tariff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Tariff.
    pub tariff_id: i64,
    /// Digits the destination starts with (longest match wins).
    pub prefix: String,
    /// Free text ("Germany mobile").
    pub description: String,
    /// Price to the customer, micros per minute.
    pub sell_rate_micros: i64,
    /// Cost from the carrier, micros per minute.
    pub buy_rate_micros: i64,
    /// First billed block, seconds.
    pub initial_block_s: i64,
    /// Later billing increment, seconds.
    pub increment_s: i64,
    /// Charged once per connected call, micros.
    pub connection_fee_micros: i64,
    /// The optional per-destination fields (the billing crate's `RateExtras` as JSON; `{}`).
    pub extras_json: String,
}
