//! Opening the database and the two-backend plumbing (`Conn`, `WriteTx`, `with_conn!`).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{
    ConnectOptions, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool,
    Transaction,
};

use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::checkpointer::WRITER_AUTOCHECKPOINT;

use crate::error::StoreError;
use crate::exec::Exec;
use crate::pin_key::{PIN_KEY_FILE_NAME, PinKey};
use crate::pipeline::{PgCall, PgCallPool};

/// File name of the embedded database inside the data directory.
pub const SQLITE_FILE_NAME: &str = "talktime.sqlite3";

/// Runs `$body` once per backend with `$c` bound to `&mut &mut SqliteConnection` or
/// `&mut &mut PgConnection`. The body is the same text for both, so every query is written once.
macro_rules! with_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::backend::Conn::Sqlite($c) => $body,
            $crate::backend::Conn::Postgres($c) => $body,
        }
    };
}
pub(crate) use with_conn;

/// Which database a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// The embedded SQLite file (WAL mode).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Tuning for [`Store::open_with`].
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Pool size. SQLite serialises writers anyway; extra connections serve readers.
    pub max_connections: u32,
    /// How long a SQLite writer waits for the write lock before failing.
    pub sqlite_busy_timeout: Duration,
    /// `synchronous=FULL` makes every commit survive a power cut; the default `NORMAL` (safe
    /// with WAL against process crashes) trades the last commits of a power cut for speed.
    pub sqlite_synchronous_full: bool,
    /// Group commit on SQLite (see [`SqliteWriter`]): writes that end while others wait share
    /// one COMMIT. Off: one COMMIT per write (the benchmarks compare the two).
    pub sqlite_group_commit: bool,
    /// PostgreSQL: a call's statements on pipelined connections (`pipeline.rs`); off, they
    /// go one at a time through sqlx's pool like every other statement.
    pub postgres_pipeline: bool,
    /// The key of the PIN hashes. `None`: [`PIN_KEY_ENV`](crate::PIN_KEY_ENV) if set, else
    /// `pin.key` beside an embedded ledger (created if missing); a PostgreSQL store needs one.
    pub pin_key: Option<PinKey>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            sqlite_busy_timeout: Duration::from_secs(10),
            sqlite_synchronous_full: false,
            sqlite_group_commit: true,
            postgres_pipeline: true,
            pin_key: None,
        }
    }
}

/// The ledger. Cheap to clone (it holds a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    /// The switch this process is (`[cluster] node_id`); reservations carry it.
    node_id: Arc<str>,
    /// Keys the PIN hashes kept in `cards.pin_hash`.
    pub(crate) pin_key: Arc<PinKey>,
}

#[derive(Clone, Debug)]
enum Backend {
    /// Readers use the pool; all writes of this process go through one dedicated writer
    /// connection behind a FIFO mutex. SQLite allows one writer at a time anyway, and
    /// queueing here avoids both SQLite's sleep-and-retry busy handler (milliseconds per
    /// collision under load) and a pool checkout per write. Other processes writing the
    /// same file are still handled by the busy timeout. The third is a rusqlite reader for a
    /// call's reads on the thread that asks (see [`Store::acquire_call_read`]).
    Sqlite(
        SqlitePool,
        Arc<Writer>,
        Option<Arc<Mutex<rusqlite::Connection>>>,
    ),
    /// sqlx's pool, and the pipelined connections a call's statements run on when they
    /// could be opened from the same URL (`pipeline.rs`).
    Postgres(PgPool, Option<Arc<PgCallPool>>),
}

/// A borrowed connection of either backend.
pub(crate) enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
}

/// A pooled connection outside any explicit transaction (reads, single statements).
pub(crate) enum Held {
    Sqlite(PoolConnection<Sqlite>),
    SqliteWriter(WriterTurn),
    Postgres(PoolConnection<Postgres>),
}

/// The SQLite writer: its connection behind a FIFO mutex, and how many tasks wait for it.
#[derive(Debug)]
pub(crate) struct Writer {
    lock: Arc<Mutex<SqliteWriter>>,
    waiting: AtomicUsize,
    group_commit: bool,
    stats: Arc<GroupStats>,
    /// Copies the WAL back on its own thread for as long as the store lives (`None` in memory).
    _checkpointer: Option<crate::checkpointer::Checkpointer>,
}

/// Groups committed and the write transactions they held, for the benchmarks and tests.
#[derive(Debug, Default)]
struct GroupStats {
    groups: AtomicU64,
    members: AtomicU64,
}

/// The SQLite writer connection, its open group transaction, and whether a member's work is
/// in progress on it.
///
/// Group commit (issue 19): a write transaction that ends while other writes wait for the
/// connection does not COMMIT; it leaves `BEGIN IMMEDIATE` open for the next, and waits for
/// the group's COMMIT, done by the member after which nobody waits (or the 64th). A caller is
/// answered only once its rows are committed. Every member after the first runs inside a
/// SAVEPOINT, so one that fails or is dropped is rolled back alone; the first needs none (it
/// runs before anyone joins: its failure rolls back an empty group). Each COMMIT costs about
/// as much as a member's statements, so under load a group of N pays it once, not N times.
///
/// Each statement is a hand-off to sqlx's connection thread and back, which costs more than
/// the statement, so the group's own bookkeeping is one hand-off a member: a member that
/// leaves the group open sends `RELEASE member; SAVEPOINT member` (or the first member
/// `SAVEPOINT member`) at once, opening the next member's savepoint; the COMMIT releases
/// what is open, and `ROLLBACK TO member` keeps the savepoint for the next.
#[derive(Debug)]
pub(crate) struct SqliteWriter {
    connection: SqliteConnection,
    /// The same file through rusqlite, whose statements run on the thread that asks (see
    /// `exec.rs`): a call's writes ([`Store::begin_call_write`]). `None` for an in-memory
    /// database, which a second connection could not see.
    direct: Option<rusqlite::Connection>,
    /// The open group and the member in progress run on `direct`. SQLite lets one
    /// connection write at a time, so a member on the other connection first commits the
    /// group.
    on_direct: bool,
    /// How long `BEGIN IMMEDIATE` on `direct` retries while another process writes.
    busy_timeout: Duration,
    /// A member's work is in progress (inside its SAVEPOINT unless it is the first).
    in_transaction: bool,
    /// The member in progress runs inside `SAVEPOINT member`.
    in_savepoint: bool,
    /// A `SAVEPOINT member` is open after the group's last finished member and nothing was
    /// written since: the next member runs inside it without a statement of its own.
    savepoint_ready: bool,
    /// `BEGIN IMMEDIATE` is open: members that finished wait for its COMMIT.
    group: Option<Group>,
    stats: Arc<GroupStats>,
}

/// The name of the thread on which sqlx runs the SQLite writer connection's statements: the
/// shell can find it (in `/proc/self/task`) to place it beside the ledger's thread.
pub const SQLITE_WRITER_THREAD: &str = "sqlite-writer";

/// How long the rusqlite reader waits for a lock (see `open_sqlite`).
const READER_BUSY_TIMEOUT: Duration = Duration::from_millis(200);

/// Most members a group commits at once, and the longest it stays open: under steady load
/// someone always waits, and a group closed only at 64 members keeps its first member
/// waiting for all 64 (ledger requests averaged 30 ms at 1,400 calls/s offered while groups
/// closed only so). A COMMIT costs about a member's work, so a few milliseconds of members
/// share it well enough.
const MAX_GROUP: usize = 64;
const MAX_GROUP_SPAN: std::time::Duration = std::time::Duration::from_millis(2);
/// A finished member waits this long for the group's COMMIT before committing it itself
/// (the next writer it left the group to may have been cancelled while it queued).
const GROUP_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

#[derive(Debug)]
struct Group {
    members: usize,
    opened: std::time::Instant,
    /// Set once, by whoever commits (or abandons) the group.
    outcome: tokio::sync::watch::Sender<Option<Result<(), String>>>,
}

impl Group {
    fn new() -> Group {
        Group {
            members: 0,
            opened: std::time::Instant::now(),
            outcome: tokio::sync::watch::channel(None).0,
        }
    }
}

impl SqliteWriter {
    /// Runs a transaction-control statement on the connection the group is on.
    async fn control(&mut self, sql: &'static str) -> Result<(), StoreError> {
        match (&mut self.direct, self.on_direct) {
            (Some(direct), true) => direct.execute_batch(sql)?,
            _ => {
                sqlx::raw_sql(sql).execute(&mut self.connection).await?;
            }
        }
        Ok(())
    }

    /// `BEGIN IMMEDIATE` on the group's connection. On `direct`, SQLite's busy handler
    /// would sleep on the thread that asks, a runtime's thread, while another process holds
    /// the write lock; so it has none there, and the BEGIN is retried here after short
    /// sleeps that yield the thread, for as long as the store's busy timeout. (In WAL mode
    /// the write lock is taken only here: later statements and the COMMIT never wait.)
    async fn begin_group(&mut self) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            match self.control("BEGIN IMMEDIATE").await {
                Err(StoreError::Sqlite(error))
                    if error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                        && started.elapsed() < self.busy_timeout =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(8));
                }
                other => return other,
            }
        }
    }

    /// COMMITs the open group, if any, and tells its waiting members how it went.
    async fn close_group(&mut self) -> Result<(), StoreError> {
        let Some(group) = self.group.take() else {
            return Ok(());
        };
        self.savepoint_ready = false;
        let committed = self.control("COMMIT").await;
        self.stats.groups.fetch_add(1, Ordering::Relaxed);
        let members = u64::try_from(group.members).unwrap_or(u64::MAX);
        self.stats.members.fetch_add(members, Ordering::Relaxed);
        if committed.is_err() {
            let _ = self.control("ROLLBACK").await;
        }
        let outcome = committed.as_ref().map(|_| ()).map_err(ToString::to_string);
        group.outcome.send_replace(Some(outcome));
        committed?;
        Ok(())
    }

    /// Undoes the work of a member that never finished: its SAVEPOINT, or, for the first
    /// member, the whole (still empty) group.
    async fn roll_back_member(&mut self) -> Result<(), StoreError> {
        if !self.in_transaction {
            return Ok(());
        }
        self.in_transaction = false;
        if std::mem::take(&mut self.in_savepoint) {
            let undone = self.control("ROLLBACK TO member").await.is_ok();
            if undone {
                // The savepoint stays open, where the next member starts.
                self.savepoint_ready = true;
                return Ok(());
            }
        }
        self.savepoint_ready = false;
        let group = self.group.take();
        let rolled_back = self.control("ROLLBACK").await;
        if let Some(group) = group {
            let failed = Err("the group transaction was rolled back".to_owned());
            group.outcome.send_replace(Some(failed));
        }
        rolled_back?;
        Ok(())
    }
}

/// Counts a task queued for the writer while it waits (also when its wait is cancelled).
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn new(waiting: &'a AtomicUsize) -> Queued<'a> {
        waiting.fetch_add(1, Ordering::SeqCst);
        Queued(waiting)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Exclusive use of the SQLite writer connection. Work left unfinished (an early return or
/// error dropped the `WriteTx`) is rolled back by a spawned task, and in any case by the next
/// user before it starts, so the database write lock is never held by a dead transaction
/// for long.
pub(crate) struct WriterTurn {
    guard: OwnedMutexGuard<SqliteWriter>,
    writer: Arc<Writer>,
}

impl WriterTurn {
    /// Waits for the writer. `join`: the caller will run inside the open group (a write
    /// transaction); otherwise the group is committed first (a single autocommit statement).
    async fn take(writer: &Arc<Writer>, join: bool) -> Result<WriterTurn, StoreError> {
        let queued = Queued::new(&writer.waiting);
        let mut guard = writer.lock.clone().lock_owned().await;
        drop(queued);
        guard.roll_back_member().await?;
        if !join {
            guard.close_group().await?;
        }
        Ok(WriterTurn {
            guard,
            writer: writer.clone(),
        })
    }

    /// Starts a member's work: the group's `BEGIN IMMEDIATE` if none is open, else a SAVEPOINT.
    /// `direct`: on the rusqlite connection (when there is one); a group open on the other
    /// connection is committed first.
    async fn begin_member(&mut self, direct: bool) -> Result<(), StoreError> {
        let writer = &mut *self.guard;
        let direct = direct && writer.direct.is_some();
        if writer.group.is_some() && writer.on_direct != direct {
            writer.close_group().await?;
        }
        match &writer.group {
            Some(group) if group.members > 0 => {
                if !std::mem::take(&mut writer.savepoint_ready) {
                    writer.control("SAVEPOINT member").await?;
                }
                writer.in_savepoint = true;
            }
            Some(_) => {}
            None => {
                writer.on_direct = direct;
                writer.begin_group().await?;
                writer.group = Some(Group::new());
            }
        }
        writer.in_transaction = true;
        Ok(())
    }

    /// Ends a member's work; returns once the group holding it is committed.
    async fn commit_member(mut self) -> Result<(), StoreError> {
        let writer = &mut *self.guard;
        let Some(group) = writer.group.as_mut() else {
            writer.in_transaction = false;
            writer.in_savepoint = false;
            return Ok(());
        };
        let others_wait = self.writer.waiting.load(Ordering::SeqCst) > 0;
        let full = group.members + 1 >= MAX_GROUP || group.opened.elapsed() >= MAX_GROUP_SPAN;
        if !self.writer.group_commit || !others_wait || full {
            // The COMMIT releases this member's savepoint with the rest.
            group.members += 1;
            writer.in_transaction = false;
            writer.in_savepoint = false;
            return writer.close_group().await;
        }
        let next_savepoint = if writer.in_savepoint {
            "RELEASE member; SAVEPOINT member"
        } else {
            "SAVEPOINT member"
        };
        writer.control(next_savepoint).await?;
        writer.in_transaction = false;
        writer.in_savepoint = false;
        writer.savepoint_ready = true;
        let group = writer.group.as_mut().ok_or_else(|| {
            StoreError::GroupCommit("the group closed while a member ended".into())
        })?;
        group.members += 1;
        let mut outcome = group.outcome.subscribe();
        let shared = self.writer.clone();
        drop(self);
        let committed = matches!(
            tokio::time::timeout(GROUP_WAIT, outcome.wait_for(Option::is_some)).await,
            Ok(Ok(_))
        );
        if !committed {
            // Nobody committed it in time: take the writer back and commit what is open.
            drop(WriterTurn::take(&shared, false).await?);
        }
        let result = outcome.borrow().clone();
        match result {
            Some(Ok(())) => Ok(()),
            Some(Err(reason)) => Err(StoreError::GroupCommit(reason)),
            None => Err(StoreError::GroupCommit(
                "the group was never committed".into(),
            )),
        }
    }
}

impl WriterTurn {
    /// The connection the member in progress runs on.
    fn exec(&mut self) -> Exec<'_> {
        let writer = &mut *self.guard;
        match (&mut writer.direct, writer.on_direct) {
            (Some(direct), true) => Exec::Direct(direct),
            _ => Exec::Sqlite(&mut writer.connection),
        }
    }
}

impl Drop for WriterTurn {
    fn drop(&mut self) {
        if !self.guard.in_transaction {
            return;
        }
        let writer = self.writer.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // Errors are retried by the next `WriterTurn::take`.
                let _ = WriterTurn::take(&writer, false).await;
            });
        }
    }
}

/// A connection for a call's reads ([`Store::acquire_call_read`]).
pub(crate) enum CallRead {
    Direct(OwnedMutexGuard<rusqlite::Connection>),
    Pipelined(Box<PgCall>),
    Held(Held),
}

impl CallRead {
    pub(crate) fn exec(&mut self) -> Exec<'_> {
        match self {
            CallRead::Direct(reader) => Exec::Direct(reader),
            CallRead::Pipelined(call) => Exec::Pipelined(call),
            CallRead::Held(held) => held.exec(),
        }
    }
}

impl Held {
    pub(crate) fn exec(&mut self) -> Exec<'_> {
        match self {
            Held::Sqlite(connection) => Exec::Sqlite(connection),
            Held::SqliteWriter(turn) => Exec::Sqlite(&mut turn.guard.connection),
            Held::Postgres(connection) => Exec::Postgres(connection),
        }
    }

    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Held::Sqlite(connection) => Conn::Sqlite(connection),
            Held::SqliteWriter(turn) => Conn::Sqlite(&mut turn.guard.connection),
            Held::Postgres(connection) => Conn::Postgres(connection),
        }
    }
}

impl Conn<'_> {
    /// The same connection for statements written against [`Exec`].
    pub(crate) fn exec(&mut self) -> Exec<'_> {
        match self {
            Conn::Sqlite(c) => Exec::Sqlite(c),
            Conn::Postgres(c) => Exec::Postgres(c),
        }
    }
}

/// A write transaction of a call (hold, answer checkpoint, settle, release) whose statements
/// are written against [`Exec`]: on SQLite they run on the writer's rusqlite connection on
/// the calling thread, elsewhere as a [`WriteTx`].
pub(crate) struct CallWrite(WriteTx);

impl CallWrite {
    pub(crate) fn exec(&mut self) -> Exec<'_> {
        match &mut self.0 {
            WriteTx::Sqlite(turn) => turn.exec(),
            other => other.conn_exec(),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        self.0.commit().await
    }
}

/// A write transaction: `BEGIN IMMEDIATE` on SQLite (takes the single write lock up front, so a
/// transaction never fails half-way on a lock upgrade), a plain `BEGIN` on PostgreSQL where
/// the ledger locks rows with `SELECT ... FOR UPDATE` instead.
pub(crate) enum WriteTx {
    Sqlite(WriterTurn),
    Postgres(Transaction<'static, Postgres>),
    /// One statement on PostgreSQL, which commits itself.
    PostgresStatement(PoolConnection<Postgres>),
    /// A call's transaction (or single statement) on a pipelined connection.
    Pipelined(Box<PgCall>),
}

impl WriteTx {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            WriteTx::Sqlite(turn) => Conn::Sqlite(&mut turn.guard.connection),
            WriteTx::Postgres(transaction) => Conn::Postgres(transaction),
            WriteTx::PostgresStatement(connection) => Conn::Postgres(connection),
            // Only a call's writes run pipelined, and they see it through `conn_exec`.
            WriteTx::Pipelined(_) => unreachable!("a pipelined call write has no sqlx connection"),
        }
    }

    /// The transaction's connection for statements written against [`Exec`].
    pub(crate) fn conn_exec(&mut self) -> Exec<'_> {
        match self {
            WriteTx::Sqlite(turn) => Exec::Sqlite(&mut turn.guard.connection),
            WriteTx::Postgres(transaction) => Exec::Postgres(transaction),
            WriteTx::PostgresStatement(connection) => Exec::Postgres(connection),
            WriteTx::Pipelined(call) => Exec::Pipelined(call),
        }
    }

    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        match self {
            WriteTx::Sqlite(turn) => turn.commit_member().await?,
            WriteTx::Postgres(transaction) => transaction.commit().await?,
            WriteTx::PostgresStatement(_) => {}
            WriteTx::Pipelined(call) => call.commit().await?,
        }
        Ok(())
    }
}

impl Store {
    /// Opens (and migrates) a store.
    ///
    /// `location` is one of:
    /// - `postgres://user@host:port/db` or `postgresql://...` (any sqlx PostgreSQL URL, e.g.
    ///   `?options[search_path]=talktime` to use a schema);
    /// - `sqlite://path/to/file.sqlite3` or `sqlite:path` (a SQLite file, created if missing);
    /// - anything else is a data directory, created if missing, holding [`SQLITE_FILE_NAME`].
    pub async fn open(location: &str) -> Result<Store, StoreError> {
        Self::open_with(location, &StoreOptions::default()).await
    }

    /// [`Store::open`] with explicit pool and durability options.
    pub async fn open_with(location: &str, options: &StoreOptions) -> Result<Store, StoreError> {
        if location.starts_with("postgres://") || location.starts_with("postgresql://") {
            let mut connect = PgConnectOptions::from_str(location)?;
            // `prefer` on this machine: no TLS (see `pg_tls`), as the pipelined connections.
            if matches!(connect.get_ssl_mode(), sqlx::postgres::PgSslMode::Prefer)
                && crate::pg_tls::is_local(connect.get_host())
            {
                connect = connect.ssl_mode(sqlx::postgres::PgSslMode::Disable);
            }
            let store = Self::open_postgres(connect, options).await?;
            let calls = match options.postgres_pipeline {
                true => PgCallPool::open(location, options.max_connections).await,
                false => None,
            };
            return Ok(store.with_pipelined_calls(calls));
        }
        if location.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(location)?;
            let beside = connect
                .get_filename()
                .parent()
                .filter(|parent| !parent.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf();
            return Self::open_sqlite(connect, options, &beside).await;
        }
        if location.contains("://") {
            return Err(StoreError::UnsupportedLocation(location.to_owned()));
        }
        Self::open_data_dir(Path::new(location), options).await
    }

    /// Opens the embedded database in `directory`, creating both if needed (the directory
    /// 0700, the file 0600: a ledger holds PINs and balances).
    pub async fn open_data_dir(
        directory: &Path,
        options: &StoreOptions,
    ) -> Result<Store, StoreError> {
        create_private_dir(directory).map_err(StoreError::DataDirectory)?;
        let file: PathBuf = directory.join(SQLITE_FILE_NAME);
        Self::open_sqlite(
            SqliteConnectOptions::new().filename(file),
            options,
            directory,
        )
        .await
    }

    async fn open_sqlite(
        connect: SqliteConnectOptions,
        options: &StoreOptions,
        key_directory: &Path,
    ) -> Result<Store, StoreError> {
        let pin_key = match resolve_pin_key(options)? {
            Some(key) => key,
            None if is_in_memory(connect.get_filename()) => PinKey::random(),
            None => PinKey::load_or_create(&key_directory.join(PIN_KEY_FILE_NAME))?,
        };
        create_private(connect.get_filename())?;
        let synchronous = if options.sqlite_synchronous_full {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        };
        let connect = connect
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .foreign_keys(true)
            .busy_timeout(options.sqlite_busy_timeout)
            // The checkpointer's thread copies the WAL back (checkpointer.rs); a connection
            // checkpoints on its own only if that falls far behind.
            .pragma("wal_autocheckpoint", WRITER_AUTOCHECKPOINT.to_string())
            .pragma("cache_size", "-16384");
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .test_before_acquire(false)
            .connect_with(connect.clone())
            .await?;
        sqlx::migrate!("migrations/sqlite").run(&pool).await?;
        let stats = Arc::new(GroupStats::default());
        let writer_connect = connect
            .clone()
            .thread_name(|_| SQLITE_WRITER_THREAD.to_owned());
        let (direct, reader, checkpointer) = match is_in_memory(connect.get_filename()) {
            true => (None, None, None),
            false => {
                let reader = open_direct(connect.get_filename(), options)?;
                reader.pragma_update(None, "query_only", "ON")?;
                // A WAL reader waits only while the WAL index is rebuilt after a crash: a
                // moment, on the asking thread, rather than a failed look-up.
                reader.busy_timeout(READER_BUSY_TIMEOUT)?;
                let reader = Arc::new(Mutex::new(reader));
                (
                    Some(open_direct(connect.get_filename(), options)?),
                    Some(reader),
                    Some(crate::checkpointer::start(connect.get_filename())?),
                )
            }
        };
        let writer = SqliteWriter {
            connection: writer_connect.connect().await?,
            direct,
            on_direct: false,
            busy_timeout: options.sqlite_busy_timeout,
            in_transaction: false,
            in_savepoint: false,
            savepoint_ready: false,
            group: None,
            stats: stats.clone(),
        };
        let writer = Writer {
            lock: Arc::new(Mutex::new(writer)),
            waiting: AtomicUsize::new(0),
            group_commit: options.sqlite_group_commit,
            stats,
            _checkpointer: checkpointer,
        };
        let store = Store {
            backend: Backend::Sqlite(pool, Arc::new(writer), reader),
            node_id: Arc::from(""),
            pin_key: Arc::new(pin_key),
        };
        store.adopt_pin_key().await?;
        Ok(store)
    }

    /// Opens a PostgreSQL store from explicit connect options.
    pub async fn open_postgres(
        connect: PgConnectOptions,
        options: &StoreOptions,
    ) -> Result<Store, StoreError> {
        let pin_key = resolve_pin_key(options)?.ok_or_else(|| {
            StoreError::PinKey(format!(
                "a PostgreSQL ledger needs the PIN key shared by every node: set {} or the \
                 configured key file",
                crate::PIN_KEY_ENV
            ))
        })?;
        // No ping before each acquire: it doubles the round trips of the hot path; a dead
        // connection surfaces as an error on its next query and is discarded by the pool.
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .test_before_acquire(false)
            .connect_with(connect)
            .await?;
        sqlx::migrate!("migrations/postgres").run(&pool).await?;
        let store = Store {
            backend: Backend::Postgres(pool, None),
            node_id: Arc::from(""),
            pin_key: Arc::new(pin_key),
        };
        store.adopt_pin_key().await?;
        Ok(store)
    }

    /// The same store with a call's statements on `calls` (PostgreSQL only).
    fn with_pipelined_calls(mut self, calls: Option<Arc<PgCallPool>>) -> Store {
        if let Backend::Postgres(_, pipelined) = &mut self.backend {
            *pipelined = calls;
        }
        self
    }

    /// The same store acting for the switch `node_id`: its reservations carry it, and its
    /// heartbeat keeps them from being recovered by another node.
    pub fn with_node(mut self, node_id: &str) -> Store {
        self.node_id = Arc::from(node_id);
        self
    }

    /// The switch this store acts for ('' when none was set).
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Which backend this store uses.
    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(..) => BackendKind::Sqlite,
            Backend::Postgres(..) => BackendKind::Postgres,
        }
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(pool, ..) => pool.close().await,
            Backend::Postgres(pool, _) => pool.close().await,
        }
    }

    pub(crate) async fn acquire(&self) -> Result<Held, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(pool, ..) => Held::Sqlite(pool.acquire().await?),
            Backend::Postgres(pool, _) => Held::Postgres(pool.acquire().await?),
        })
    }

    /// A connection for one of a call's reads: on SQLite the rusqlite reader, run on the
    /// thread that asks (a statement through sqlx costs a hand-off to a connection thread
    /// and back, more than the statement), unless another task has it this moment; then,
    /// and elsewhere, a pooled connection.
    pub(crate) async fn acquire_call_read(&self) -> Result<CallRead, StoreError> {
        if let Backend::Sqlite(_, _, Some(reader)) = &self.backend
            && let Ok(reader) = reader.clone().try_lock_owned()
        {
            return Ok(CallRead::Direct(reader));
        }
        if let Backend::Postgres(_, Some(calls)) = &self.backend {
            return Ok(CallRead::Pipelined(Box::new(calls.acquire().await?)));
        }
        Ok(CallRead::Held(self.acquire().await?))
    }

    /// A connection for a single autocommit write statement.
    pub(crate) async fn acquire_for_write(&self) -> Result<Held, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(_, writer, _) => {
                Held::SqliteWriter(WriterTurn::take(writer, false).await?)
            }
            Backend::Postgres(pool, _) => Held::Postgres(pool.acquire().await?),
        })
    }

    /// True when a call's statements run on pipelined PostgreSQL connections (`pipeline.rs`).
    pub fn pipelines_calls(&self) -> bool {
        matches!(&self.backend, Backend::Postgres(_, Some(_)))
    }

    /// SQLite: (groups committed, write transactions in them)
    /// since the store opened; their ratio is the mean group size. `None` on PostgreSQL.
    pub fn write_groups(&self) -> Option<(u64, u64)> {
        match &self.backend {
            Backend::Sqlite(_, writer, _) => Some((
                writer.stats.groups.load(Ordering::Relaxed),
                writer.stats.members.load(Ordering::Relaxed),
            )),
            Backend::Postgres(..) => None,
        }
    }

    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        self.begin_member(false).await
    }

    /// A call's write transaction (see [`CallWrite`]).
    pub(crate) async fn begin_call_write(&self) -> Result<CallWrite, StoreError> {
        if let Backend::Postgres(_, Some(calls)) = &self.backend {
            let mut call = Box::new(calls.acquire().await?);
            call.begin();
            return Ok(CallWrite(WriteTx::Pipelined(call)));
        }
        Ok(CallWrite(self.begin_member(true).await?))
    }

    /// A write transaction; on SQLite a member of the group commit, on the rusqlite
    /// connection when `direct`.
    async fn begin_member(&self, direct: bool) -> Result<WriteTx, StoreError> {
        Ok(match &self.backend {
            Backend::Sqlite(_, writer, _) => {
                let mut turn = WriterTurn::take(writer, true).await?;
                turn.begin_member(direct).await?;
                WriteTx::Sqlite(turn)
            }
            Backend::Postgres(pool, _) => WriteTx::Postgres(pool.begin().await?),
        })
    }

    /// [`Store::begin_call_write`] for one statement: on SQLite a member of the group commit
    /// (a lone autocommit statement would COMMIT the open group and then itself); on
    /// PostgreSQL the statement commits itself. [`CallWrite::commit`] answers once durable.
    pub(crate) async fn begin_call_statement(&self) -> Result<CallWrite, StoreError> {
        match &self.backend {
            Backend::Sqlite(..) => self.begin_call_write().await,
            Backend::Postgres(_, Some(calls)) => Ok(CallWrite(WriteTx::Pipelined(Box::new(
                calls.acquire().await?,
            )))),
            Backend::Postgres(pool, None) => {
                Ok(CallWrite(WriteTx::PostgresStatement(pool.acquire().await?)))
            }
        }
    }

    /// Tables and their columns (name, normalised type), sorted, for comparing the two
    /// migration directories. `_sqlx_migrations` is left out.
    pub async fn schema_columns(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut held = self.acquire().await?;
        let rows: Vec<(String, String, String)> = match held.conn() {
            Conn::Sqlite(c) => sqlx::query_as(
                "SELECT m.name, p.name, p.type FROM sqlite_master m, pragma_table_info(m.name) p \
                     WHERE m.type = 'table' AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\' \
                     AND m.name NOT LIKE 'sqlite%'",
            )
            .fetch_all(&mut *c)
            .await?,
            Conn::Postgres(c) => {
                sqlx::query_as(
                    "SELECT table_name::TEXT, column_name::TEXT, data_type::TEXT \
                     FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_sqlx%'",
                )
                .fetch_all(&mut *c)
                .await?
            }
        };
        let mut columns: Vec<(String, String, String)> = rows
            .into_iter()
            .map(|(table, column, column_type)| {
                let column_type = normalise_type(self.kind(), &column_type);
                (table, column, column_type)
            })
            .collect();
        columns.sort();
        Ok(columns)
    }
}

/// INTEGER and BIGINT are both 64-bit on SQLite, but PostgreSQL's INTEGER is 32-bit: only
/// BIGINT maps to `int64` there, so a stray INTEGER in the PostgreSQL migration shows up.
fn normalise_type(kind: BackendKind, column_type: &str) -> String {
    let lower = column_type.to_ascii_lowercase();
    match (kind, lower.as_str()) {
        (BackendKind::Sqlite, "integer" | "bigint") | (BackendKind::Postgres, "bigint") => {
            "int64".to_owned()
        }
        _ => lower,
    }
}

/// The key the options or the environment give, if any.
fn resolve_pin_key(options: &StoreOptions) -> Result<Option<PinKey>, StoreError> {
    match &options.pin_key {
        Some(key) => Ok(Some(key.clone())),
        None => PinKey::from_environment(),
    }
}

/// The writer's rusqlite connection, set as sqlx sets the others (WAL is already on: it
/// stays with the file).
fn open_direct(file: &Path, options: &StoreOptions) -> Result<rusqlite::Connection, StoreError> {
    let connection = rusqlite::Connection::open(file)?;
    // No busy handler: see `SqliteWriter::begin_group`.
    connection.busy_timeout(Duration::ZERO)?;
    let synchronous = if options.sqlite_synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    connection.pragma_update(None, "synchronous", synchronous)?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    connection.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT)?;
    connection.pragma_update(None, "cache_size", -16384)?;
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

fn is_in_memory(file: &Path) -> bool {
    let name = file.to_string_lossy();
    name.is_empty() || name.starts_with(':') || name.contains("mode=memory")
}

/// Creates a directory (and its missing parents) readable by the owner only; an existing one
/// is left as the operator made it.
pub fn create_private_dir(directory: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
}

/// Creates a new SQLite file 0600 before SQLite does (it would use the umask, usually 0644;
/// its -wal and -shm files take the main file's mode). In-memory and existing files are left.
fn create_private(file: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    if is_in_memory(file) || file.exists() {
        return Ok(());
    }
    if let Some(parent) = file
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        create_private_dir(parent).map_err(StoreError::DataDirectory)?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(StoreError::DataDirectory(error)),
    }
}
