//! Typed errors of the ledger.

use crate::reservation::Refusal;

/// Everything a ledger operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database driver failed (connection lost, constraint the ledger did not expect, ...).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// SQLite failed on the writer's own connection (see `exec.rs`): busy past the timeout,
    /// a full disk, a constraint the ledger did not expect.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// PostgreSQL failed on a call's pipelined connection (`pipeline.rs`).
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),

    /// A call's pipelined PostgreSQL connection could not be used (its pool closed, the
    /// connection gone); nothing of the request was committed.
    #[error("PostgreSQL call connection: {0}")]
    PipelinedCall(String),

    /// The write went into a group transaction (group commit) whose COMMIT failed: nothing of
    /// it is in the ledger.
    #[error("group commit failed: {0}")]
    GroupCommit(String),

    #[error("card {card_id} was already activated by another call")]
    AlreadyActivated { card_id: i64 },
    /// Applying the embedded migrations failed.
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The data directory of the embedded database could not be created.
    #[error("cannot prepare the data directory: {0}")]
    DataDirectory(#[source] std::io::Error),
    /// The location given to [`crate::Store::open`] is not understood.
    #[error("unsupported database location: {0}")]
    UnsupportedLocation(String),
    /// The PIN key is missing, unreadable, malformed or not the ledger's.
    #[error("PIN key: {0}")]
    PinKey(String),
    /// A referenced row does not exist.
    #[error("{entity} {id} not found")]
    NotFound {
        /// What kind of row ("account", "card", "tariff", ...).
        entity: &'static str,
        /// Its id.
        id: i64,
    },
    /// A value passed in is out of range (a negative amount, a zero PIN length, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The account or card cannot be used (blocked, expired, closed).
    #[error("{entity} {id} is {status}")]
    NotUsable {
        /// "account" or "card".
        entity: &'static str,
        /// Its id.
        id: i64,
        /// Why: its status, or "expired".
        status: String,
    },
    /// Disposable cards are never recharged (seed 002, tip 3).
    #[error("card {card_id} is disposable and cannot be recharged")]
    DisposableCard {
        /// The card.
        card_id: i64,
    },
    /// The account (or its owner) already carries as many calls as its concurrency limit.
    #[error("account {account_id} already has {open} of {limit} calls in progress")]
    ConcurrencyLimit {
        /// The account whose limit was hit (the card's account or its owner).
        account_id: i64,
        /// Its limit.
        limit: i64,
        /// Calls in progress.
        open: i64,
    },
    /// A reseller's customers together started as many calls in the last second as it allows.
    #[error("account {account_id} started {per_second} calls in the last second, its limit")]
    CallRateLimit {
        /// The reseller's own account.
        account_id: i64,
        per_second: i64,
    },
    /// The rating function refused the call.
    #[error("call refused: {0}")]
    Refused(Refusal),
    /// The rating function asked to reserve more than is available, or a negative amount.
    #[error("cannot reserve {requested_micros} micros, {available_micros} available")]
    ReservationTooLarge {
        /// What the decision asked for.
        requested_micros: i64,
        /// What the ledger had.
        available_micros: i64,
    },
    /// A reservation for this call id already exists.
    #[error("a reservation for this call id already exists")]
    CallIdInUse,
    /// No reservation exists for this call id.
    #[error("no reservation for this call id")]
    UnknownCall,
    /// Settle after release, or release after settle.
    #[error("the reservation for this call is already {state}")]
    ReservationClosed {
        /// "settled" or "released".
        state: String,
    },
    /// A second settle for one call with a different amount; nothing was charged by it.
    #[error(
        "call already settled for {charged_micros} micros; refusing a second charge of {requested_micros}"
    )]
    SettleConflict {
        /// What the first settle charged.
        charged_micros: i64,
        /// What this settle asked to charge.
        requested_micros: i64,
    },
    /// No unused PIN was found after many tries: the PIN space is too small for the batch.
    #[error("PIN space exhausted: length {pin_length} cannot hold {count} more unique PINs")]
    PinSpaceExhausted {
        /// The PIN length asked for.
        pin_length: u32,
        /// Cards that were to be created.
        count: u64,
    },
    /// Reading or writing CSV failed (I/O, or a malformed file the reader cannot continue).
    #[error("CSV error: {0}")]
    Csv(#[from] csv::Error),
    /// The header row of a tariff CSV lacks a required column.
    #[error("CSV header: {0}")]
    CsvHeader(String),
    /// Writing an export failed.
    #[error("export failed: {0}")]
    Io(#[from] std::io::Error),
    /// A stored value is not one the ledger writes (a hand-edited database?).
    #[error("corrupt stored value in {column}: {value}")]
    Corrupt {
        /// The column.
        column: &'static str,
        /// What was found.
        value: String,
    },
}

impl StoreError {
    pub(crate) fn not_found(entity: &'static str, id: i64) -> Self {
        Self::NotFound { entity, id }
    }

    /// True when the same request may succeed later unchanged: the database was unreachable,
    /// busy or restarting (a settle is then retried, never dropped).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Database(_)
                | StoreError::Sqlite(_)
                | StoreError::Postgres(_)
                | StoreError::PipelinedCall(_)
                | StoreError::GroupCommit(_)
        )
    }
}
