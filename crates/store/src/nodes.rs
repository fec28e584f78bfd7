//! The switches on one database (issue 19): each node's row, its heartbeat, and a drain an
//! operator asks for from anywhere (`talktime nodes drain`), which the node reads back with
//! its heartbeat.

use crate::backend::{Store, with_conn};
use crate::error::StoreError;

/// A node as the operator sees it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct NodeRow {
    pub node_id: String,
    pub started_at_ms: i64,
    pub heartbeat_ms: i64,
    /// When a drain was asked for (cleared when the node starts again).
    pub drain_requested_ms: Option<i64>,
    /// When it stopped by itself, every call billed (cleared when it starts again).
    pub stopped_at_ms: Option<i64>,
    /// Open reservations this node holds: its calls up, or waiting for recovery.
    pub open_calls: i64,
}

/// A node's state at `now_ms`, given the lease after which a silent node is dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Up,
    Draining,
    /// Stopped by itself (a drain or a signal), every call billed.
    Stopped,
    /// Silent past the lease: another node bills its calls.
    Dead,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Draining => "draining",
            NodeState::Stopped => "stopped",
            NodeState::Dead => "dead",
        }
    }
}

impl NodeRow {
    pub fn state(&self, now_ms: i64, lease_ms: i64) -> NodeState {
        if self.stopped_at_ms.is_some() {
            NodeState::Stopped
        } else if self.heartbeat_ms < now_ms.saturating_sub(lease_ms) {
            NodeState::Dead
        } else if self.drain_requested_ms.is_some() {
            NodeState::Draining
        } else {
            NodeState::Up
        }
    }
}

impl Store {
    /// Registers this node as started now: a fresh start time and heartbeat, and no drain (a
    /// drained node that is started again takes calls).
    pub async fn register_node(&self, now_ms: i64) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "INSERT INTO nodes (node_id, started_at_ms, heartbeat_ms) VALUES ($1, $2, $2) \
             ON CONFLICT (node_id) DO UPDATE SET started_at_ms = excluded.started_at_ms, \
             heartbeat_ms = excluded.heartbeat_ms, drain_requested_ms = NULL, stopped_at_ms = NULL",
        )
        .bind(self.node_id())
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Refreshes this node's heartbeat (creating its row on first use); true when an operator
    /// asked this node to drain.
    pub async fn heartbeat(&self, now_ms: i64) -> Result<bool, StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let drain: Option<i64> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "INSERT INTO nodes (node_id, started_at_ms, heartbeat_ms) VALUES ($1, $2, $2) \
             ON CONFLICT (node_id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms \
             RETURNING drain_requested_ms",
        )
        .bind(self.node_id())
        .bind(now_ms)
        .fetch_one(&mut **c)
        .await)?;
        Ok(drain.is_some())
    }

    /// This node stopped by itself with every call billed.
    pub async fn node_stopped(&self, now_ms: i64) -> Result<(), StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        with_conn!(&mut conn, c => sqlx::query(
            "UPDATE nodes SET stopped_at_ms = $2 WHERE node_id = $1",
        )
        .bind(self.node_id())
        .bind(now_ms)
        .execute(&mut **c)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Every node that ever wrote a heartbeat, by name, with its open calls.
    pub async fn nodes(&self) -> Result<Vec<NodeRow>, StoreError> {
        let mut held = self.acquire().await?;
        let mut conn = held.conn();
        let rows: Vec<NodeRow> = with_conn!(&mut conn, c => sqlx::query_as(
            "SELECT n.node_id, n.started_at_ms, n.heartbeat_ms, n.drain_requested_ms, n.stopped_at_ms, \
             (SELECT COUNT(*) FROM reservations r \
              WHERE r.node_id = n.node_id AND r.state = 'open') AS open_calls \
             FROM nodes n ORDER BY n.node_id",
        )
        .fetch_all(&mut **c)
        .await)?;
        Ok(rows)
    }

    /// Asks `node_id` to drain; false when no such node ever ran on this database. Asking
    /// again keeps the first request's time.
    pub async fn request_drain(&self, node_id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut held = self.acquire_for_write().await?;
        let mut conn = held.conn();
        let known: Option<String> = with_conn!(&mut conn, c => sqlx::query_scalar(
            "UPDATE nodes SET drain_requested_ms = COALESCE(drain_requested_ms, $2) \
             WHERE node_id = $1 RETURNING node_id",
        )
        .bind(node_id)
        .bind(now_ms)
        .fetch_optional(&mut **c)
        .await)?;
        Ok(known.is_some())
    }
}
