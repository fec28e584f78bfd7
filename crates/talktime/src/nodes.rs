//! The switches on one database (issue 19): `talktime nodes list|drain`, `GET /api/nodes` and
//! `POST /api/nodes/{node}/drain`. A drain is written to the node's row; the node reads it back
//! with its next heartbeat (`recovery::spawn_cluster_tasks`), refuses new calls and OPTIONS with
//! 503 (a proxy's probe takes it out), lets its calls end and exits.

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use clap::Subcommand;
use talktime_store::{NodeRow, Store};

use crate::admin::LedgerArgs;
use crate::admin_http::{AdminError, AdminState, ApiCaller};
use crate::openapi::ErrorBody;
use crate::server::wall_clock_ms;

#[derive(Debug, Subcommand)]
pub enum NodesCommand {
    /// The switches on this ledger: state (up, draining, stopped, dead), heartbeat age, calls
    /// held.
    List {
        #[command(flatten)]
        ledger: LedgerArgs,
        /// `[cluster] node_lease_s`: a node silent longer is dead.
        #[arg(long = "lease-s", default_value_t = 10)]
        lease_s: u64,
    },
    /// Drain a node: it refuses new calls (503, also to a proxy's OPTIONS probe), lets its
    /// calls end by themselves and exits. Starting it again undoes the drain.
    Drain {
        #[command(flatten)]
        ledger: LedgerArgs,
        /// The node's name (`[cluster] node_id`, as `talktime nodes list` shows it).
        node: String,
    },
}

pub async fn run(command: NodesCommand) -> anyhow::Result<()> {
    match command {
        NodesCommand::List { ledger, lease_s } => {
            let store = ledger.open().await?;
            let lease_ms = i64::try_from(lease_s.saturating_mul(1000)).unwrap_or(i64::MAX);
            print_nodes(&store, lease_ms).await
        }
        NodesCommand::Drain { ledger, node } => {
            let store = ledger.open().await?;
            if !store.request_drain(&node, wall_clock_ms()).await? {
                anyhow::bail!("no node {node} on this ledger (see `talktime nodes list`)");
            }
            store
                .audit(
                    None,
                    "nodes.drain",
                    &format!("node {node}"),
                    None,
                    None,
                    wall_clock_ms(),
                )
                .await?;
            println!("node {node} drains: it takes no new call and stops when its calls end");
            Ok(())
        }
    }
}

async fn print_nodes(store: &Store, lease_ms: i64) -> anyhow::Result<()> {
    let now = wall_clock_ms();
    println!(
        "{:<32} {:<9} {:>13} {:>10}",
        "node", "state", "heartbeat_s", "open_calls"
    );
    for node in store.nodes().await? {
        let view = NodeView::of(&node, now, lease_ms);
        println!(
            "{:<32} {:<9} {:>11}.{} {:>10}",
            view.node,
            view.state,
            view.heartbeat_age_ms / 1000,
            view.heartbeat_age_ms % 1000 / 100,
            view.open_calls
        );
    }
    Ok(())
}

/// A node as the API answers it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct NodeView {
    pub node: String,
    /// `up`, `draining`, `stopped` (by itself, every call billed) or `dead` (silent past
    /// `[cluster] node_lease_s`: another node bills its calls).
    pub state: String,
    pub started_at_ms: i64,
    /// How long ago its last heartbeat was written.
    pub heartbeat_age_ms: i64,
    pub drain_requested_at_ms: Option<i64>,
    /// Open reservations it holds: its calls up (or, dead, waiting for recovery).
    pub open_calls: i64,
}

impl NodeView {
    fn of(node: &NodeRow, now_ms: i64, lease_ms: i64) -> NodeView {
        NodeView {
            node: node.node_id.clone(),
            state: node.state(now_ms, lease_ms).as_str().into(),
            started_at_ms: node.started_at_ms,
            heartbeat_age_ms: now_ms.saturating_sub(node.heartbeat_ms).max(0),
            drain_requested_at_ms: node.drain_requested_ms,
            open_calls: node.open_calls,
        }
    }
}

/// The switches on this ledger.
#[utoipa::path(get, path = "/api/nodes", tag = "switch",
    responses((status = 200, body = Vec<NodeView>), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AdminState>,
) -> Result<Json<Vec<NodeView>>, AdminError> {
    let now = wall_clock_ms();
    let lease_ms = state.node_lease_ms;
    let nodes = state.store().nodes().await?;
    Ok(Json(
        nodes
            .iter()
            .map(|node| NodeView::of(node, now, lease_ms))
            .collect(),
    ))
}

/// Drains a node: it refuses new calls, lets its calls end and exits (within a heartbeat).
#[utoipa::path(post, path = "/api/nodes/{node}/drain", tag = "switch",
    params(("node" = String, Path, description = "The node's name")),
    responses((status = 202), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn drain(
    State(state): State<AdminState>,
    axum::Extension(caller): axum::Extension<ApiCaller>,
    UrlPath(node): UrlPath<String>,
) -> Result<axum::http::StatusCode, AdminError> {
    if !state.store().request_drain(&node, wall_clock_ms()).await? {
        return Err(AdminError::NotFound(format!("no node {node}")));
    }
    let after = serde_json::json!({ "drain": true });
    crate::vouchers::audit(
        &state,
        &caller,
        "nodes.drain",
        &format!("node {node}"),
        after,
    )
    .await?;
    Ok(axum::http::StatusCode::ACCEPTED)
}
