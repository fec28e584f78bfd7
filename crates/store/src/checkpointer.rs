//! The SQLite checkpointer: copies the WAL back into the database file on a thread of its
//! own, so that the writer never does (issue 19).
//!
//! With `wal_autocheckpoint`, the connection that commits past the threshold checkpoints
//! there and then, on the ledger's thread. Under steady load the WAL never restarts (a
//! passive checkpoint never catches up with a writer that never pauses), so every commit past
//! the threshold checkpointed again: at 3,000 calls/s the ledger's thread spent about 200 ms
//! a second in `fsync` (eight checkpoints a second, three syncs each, measured with
//! bpftrace), and calls were refused while requests queued behind it.
//!
//! Here, every [`CHECK_EVERY`]: a PASSIVE checkpoint copies what is committed (the slow part:
//! the copying and its syncs, beside the writer, which goes on committing); once the WAL holds
//! [`RESTART_FRAMES`], a RESTART checkpoint takes the write lock for the few frames committed
//! since, syncs, and lets the next writer start the WAL from its beginning, so the file stays
//! about that size. The writer's connections keep a far higher `wal_autocheckpoint`
//! ([`WRITER_AUTOCHECKPOINT`]) as a safety net should this thread fall behind.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tracing::warn;

/// How often the thread looks at the WAL.
pub(crate) const CHECK_EVERY: Duration = Duration::from_millis(250);
/// WAL frames (pages) past which the WAL is restarted: about 32 MB of 4 KB pages, the size
/// the writer's own checkpoints used to keep.
pub(crate) const RESTART_FRAMES: i64 = 8192;
/// `wal_autocheckpoint` on the writer's connections: only if this thread falls far behind.
pub(crate) const WRITER_AUTOCHECKPOINT: i64 = 65_536;
/// How long the RESTART checkpoint waits for the write lock and then for readers (holding the
/// write lock meanwhile: a long read, such as a CDR export, must not stall the writer).
const RESTART_BUSY_TIMEOUT: Duration = Duration::from_millis(50);
/// After a RESTART kept from finishing (a reader on an old snapshot), the next is tried no
/// sooner than this.
const RESTART_BACK_OFF: Duration = Duration::from_secs(2);

/// The checkpointer's thread name (in `top -H` and the load script's per-thread figures).
pub const CHECKPOINTER_THREAD: &str = "sqlite-checkpoint";

/// Keeps the checkpointer running; dropping it ends the thread at its next look.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    _running: mpsc::Sender<()>,
}

/// Starts the checkpointer for the database `file`.
pub(crate) fn start(file: &Path) -> std::io::Result<Checkpointer> {
    let (running, stopped) = mpsc::channel::<()>();
    let file = file.to_path_buf();
    std::thread::Builder::new()
        .name(CHECKPOINTER_THREAD.into())
        .spawn(move || run(&file, &stopped))?;
    Ok(Checkpointer { _running: running })
}

fn run(file: &Path, stopped: &mpsc::Receiver<()>) {
    let connection = match open(file) {
        Ok(connection) => connection,
        Err(error) => {
            warn!(%error, "no SQLite checkpointer: the writer's own checkpoints will do");
            return;
        }
    };
    let mut failures: u64 = 0;
    let mut next_restart = Instant::now();
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECK_EVERY) {
        if let Err(error) = checkpoint(&connection, &mut next_restart) {
            failures += 1;
            // Logged when the count reaches a power of two: a stuck disk is not a log flood.
            if failures.is_power_of_two() {
                warn!(%error, failures, "SQLite checkpoint failed; retrying");
            }
        }
    }
}

fn open(file: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let connection = rusqlite::Connection::open(file)?;
    connection.busy_timeout(RESTART_BUSY_TIMEOUT)?;
    // Its own commits (none) would never checkpoint; what it does is asked for below.
    connection.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(connection)
}

/// One look: copy what is committed; restart the WAL once it is long.
fn checkpoint(
    connection: &rusqlite::Connection,
    next_restart: &mut Instant,
) -> rusqlite::Result<()> {
    let passive = wal_checkpoint(connection, "PRAGMA wal_checkpoint(PASSIVE)")?;
    if passive.frames >= RESTART_FRAMES && Instant::now() >= *next_restart {
        let restart = wal_checkpoint(connection, "PRAGMA wal_checkpoint(RESTART)")?;
        if restart.busy {
            *next_restart = Instant::now() + RESTART_BACK_OFF;
        }
    }
    Ok(())
}

/// What a `PRAGMA wal_checkpoint(..)` says.
struct Outcome {
    /// It was kept from finishing (the write lock or a reader).
    busy: bool,
    /// Frames the WAL holds.
    frames: i64,
}

fn wal_checkpoint(connection: &rusqlite::Connection, pragma: &str) -> rusqlite::Result<Outcome> {
    connection.query_row(pragma, [], |row| {
        Ok(Outcome {
            busy: row.get::<_, i64>(0)? != 0,
            frames: row.get(1)?,
        })
    })
}
