//! Online backup of the embedded ledger (issue 18): `VACUUM INTO` copies a consistent
//! snapshot while the switch keeps writing (WAL readers do not block writers), and a summary
//! to compare a restored ledger with its source.

use std::path::Path;

use crate::backend::{BackendKind, Store, with_conn};
use crate::error::StoreError;

/// What a ledger holds, to compare a backup or a restore with its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerSummary {
    pub accounts: i64,
    pub cards: i64,
    pub transactions: i64,
    pub cdrs: i64,
    pub balance_micros: i64,
}

impl Store {
    /// Writes a consistent copy of this SQLite ledger to `file`, which must not exist or be
    /// empty (the caller creates it 0600 first).
    pub async fn backup_sqlite_into(&self, file: &Path) -> Result<(), StoreError> {
        if self.kind() != BackendKind::Sqlite {
            return Err(StoreError::InvalidArgument(
                "VACUUM INTO backs up SQLite; use pg_dump for PostgreSQL".into(),
            ));
        }
        let target = file.to_string_lossy().into_owned();
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query("VACUUM INTO $1")
            .bind(&target)
            .execute(&mut **c)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Counts and the sum of balances.
    pub async fn summary(&self) -> Result<LedgerSummary, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let row: (i64, i64, i64, i64, i64) = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM accounts), (SELECT COUNT(*) FROM cards), \
             (SELECT COUNT(*) FROM transactions), (SELECT COUNT(*) FROM cdrs), \
             CAST((SELECT COALESCE(SUM(balance_micros), 0) FROM accounts) AS BIGINT)",
        )
        .fetch_one(&mut **c)
        .await)?;
        Ok(LedgerSummary {
            accounts: row.0,
            cards: row.1,
            transactions: row.2,
            cdrs: row.3,
            balance_micros: row.4,
        })
    }

    /// No account, card, tariff or CDR: a ledger a restore may fill.
    pub async fn is_empty_ledger(&self) -> Result<bool, StoreError> {
        let summary = self.summary().await?;
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let (tariffs,): (i64,) = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT COUNT(*) FROM tariffs",
        )
        .fetch_one(&mut **c)
        .await)?;
        Ok(summary.accounts == 0 && summary.cards == 0 && summary.cdrs == 0 && tariffs == 0)
    }
}
