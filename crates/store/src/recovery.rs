//! Crash recovery and leases between switches on one database (issue 12).
//!
//! Each switch has a node id and a heartbeat row it refreshes every second. A reservation
//! carries the node that made it and, once the carrier answered, a checkpoint: the answer time
//! and what the switch needs to bill the call and send BYE on both legs. When a node dies its
//! open reservations are *orphans*: the node itself finds its own at its next start, and any
//! other node finds them once the dead node's heartbeat is older than the lease. Billing an
//! orphan goes through the ordinary `settle`/`release`, whose conditional update on
//! `state = 'open'` makes sure two nodes never both close one reservation.

use crate::backend::{Store, with_conn};
use crate::error::StoreError;

/// An open reservation whose switch is gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Orphan {
    /// The reservation key (`call-id#attempt`).
    pub call_id: String,
    /// The node that made it.
    pub node_id: String,
    pub account_id: i64,
    pub card_id: Option<i64>,
    /// Credit held.
    pub amount_micros: i64,
    /// The talk-time limit the call was authorized for.
    pub max_duration_ms: i64,
    pub created_at_ms: i64,
    /// When the carrier answered, if it did.
    pub answered_at_ms: Option<i64>,
    /// What the switch wrote at answer (its own JSON format).
    pub checkpoint: Option<String>,
    /// The node's last heartbeat (`None`: the node never wrote one).
    pub node_heartbeat_ms: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct OrphanRow {
    call_id: String,
    node_id: String,
    account_id: i64,
    card_id: Option<i64>,
    amount_micros: i64,
    max_duration_ms: i64,
    created_at_ms: i64,
    answered_at_ms: Option<i64>,
    checkpoint: Option<String>,
    heartbeat_ms: Option<i64>,
}

/// What [`Store::close_unanswered`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    Released,
    /// Settled for the sum of its CDRs.
    Settled(i64),
    /// Another node (or an earlier pass) closed it first.
    AlreadyClosed,
}

impl Store {
    /// This node's last heartbeat, if it ever wrote one.
    pub async fn node_heartbeat(&self, node_id: &str) -> Result<Option<i64>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let heartbeat: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "SELECT heartbeat_ms FROM nodes WHERE node_id = $1",
        )
        .bind(node_id)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(heartbeat)
    }

    /// Records the answer of a call: from now on a restart bills it to the node's last
    /// heartbeat instead of releasing it. False when the reservation is no longer open.
    pub async fn checkpoint_answer(
        &self,
        call_id: &str,
        answered_at_ms: i64,
        checkpoint: &str,
    ) -> Result<bool, StoreError> {
        let mut write = self.begin_call_statement().await?;
        let updated = write
            .exec()
            .execute(
                "UPDATE reservations SET answered_at_ms = $2, checkpoint = $3 \
                 WHERE call_id = $1 AND state = 'open'",
                &[call_id.into(), answered_at_ms.into(), checkpoint.into()],
            )
            .await?;
        write.commit().await?;
        Ok(updated == 1)
    }

    /// Open reservations nobody is carrying: this node's own made before `own_started_ms`
    /// (its previous life; pass `None` after start-up) and those of every other node whose
    /// heartbeat is older than `now_ms - lease_ms` or missing.
    pub async fn orphans(
        &self,
        own_started_ms: Option<i64>,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Vec<Orphan>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<OrphanRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT r.call_id, r.node_id, r.account_id, r.card_id, r.amount_micros, \
             r.max_duration_ms, r.created_at_ms, r.answered_at_ms, r.checkpoint, n.heartbeat_ms \
             FROM reservations r LEFT JOIN nodes n ON n.node_id = r.node_id \
             WHERE r.state = 'open' AND ( \
               (r.node_id = $1 AND r.created_at_ms < $2) \
               OR (r.node_id <> $1 AND (n.heartbeat_ms IS NULL OR n.heartbeat_ms < $3))) \
             ORDER BY r.id",
        )
        .bind(self.node_id())
        .bind(own_started_ms.unwrap_or(i64::MIN))
        .bind(now_ms.saturating_sub(lease_ms))
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows
            .into_iter()
            .map(|row| Orphan {
                call_id: row.call_id,
                node_id: row.node_id,
                account_id: row.account_id,
                card_id: row.card_id,
                amount_micros: row.amount_micros,
                max_duration_ms: row.max_duration_ms,
                created_at_ms: row.created_at_ms,
                answered_at_ms: row.answered_at_ms,
                checkpoint: row.checkpoint,
                node_heartbeat_ms: row.heartbeat_ms,
            })
            .collect())
    }

    /// Closes an orphan nobody can bill from a checkpoint (it never answered, or was made
    /// before checkpoints existed): the sum of its CDRs if the switch wrote any, else the hold
    /// is released. Nothing happens if another node closed it first. Start-up `reconcile`
    /// closes stale reservations the same way.
    pub async fn close_unanswered(&self, call_id: &str, now_ms: i64) -> Result<Closed, StoreError> {
        let (rows, total): (i64, i64) = {
            let mut held = self.acquire().await?;
            let mut conn = held.conn();
            with_conn!(&mut conn, c => sqlx::query_as(
                "SELECT COUNT(*), CAST(COALESCE(SUM(total_micros), 0) AS BIGINT) \
                 FROM cdrs WHERE call_id = $1",
            )
            .bind(call_id)
            .fetch_one(&mut **c)
            .await)?
        };
        let closed = if rows == 0 {
            self.release(call_id, now_ms)
                .await
                .map(|_| Closed::Released)
        } else {
            self.settle(call_id, total, &[], now_ms)
                .await
                .map(|_| Closed::Settled(total))
        };
        match closed {
            Err(StoreError::ReservationClosed { .. } | StoreError::SettleConflict { .. }) => {
                Ok(Closed::AlreadyClosed)
            }
            other => other,
        }
    }
}
