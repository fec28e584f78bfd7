//! Calls a dead switch left up (issue 12). At answer the core writes a checkpoint on the
//! call's reservation: the rating inputs, the CDR's fields and a ready BYE for each leg. At
//! start-up (its own previous life) and every half lease (other nodes whose heartbeat is older
//! than the lease) a node bills each such answered call from its answer to the dead node's
//! last heartbeat (never past its authorized limit) with the same rating function as a live
//! call, writes its CDR with cause `node_lost`, and sends the two BYEs; unanswered ones are
//! released. The store's conditional settle charges each call once whoever gets there first.

use std::str::FromStr;

use futures_util::StreamExt;
use rust_decimal::Decimal;
use talktime_engine::{AccountId, CardId, DisconnectCause};
use talktime_pii::Pii;
use talktime_store::{Cdr, Orphan, StoreError};
use tracing::{info, warn};

use crate::ledger::Ledger;
pub use talktime_b2bua::recovery::{Checkpoint, LegBye};

/// What one recovery pass did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// BYEs to send, each for a leg of a call this pass billed.
    pub byes: Vec<LegBye>,
    pub billed: usize,
    pub released: usize,
}

/// Bills and closes every orphan visible now: this node's own from before `own_started_ms`
/// (start-up only) and those of nodes silent for longer than `lease_ms`.
pub async fn recover(
    ledger: &Ledger,
    own_started_ms: Option<i64>,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Recovered, StoreError> {
    let orphans = ledger
        .store()
        .orphans(own_started_ms, now_ms, lease_ms)
        .await?;
    // Several at once: each is its own settle transaction, and PostgreSQL takes them in
    // parallel (a restart after a crash with hundreds of calls up waits on this).
    let outcomes: Vec<Result<Outcome, StoreError>> = futures_util::stream::iter(orphans)
        .map(|orphan| recover_one(ledger, orphan, now_ms))
        .buffer_unordered(RECOVERY_CONCURRENCY)
        .collect()
        .await;
    let mut recovered = Recovered::default();
    let mut failed = None;
    for outcome in outcomes {
        match outcome {
            Ok(Outcome::Billed(byes)) => {
                recovered.billed += 1;
                recovered.byes.extend(byes);
            }
            Ok(Outcome::Released) => recovered.released += 1,
            Ok(Outcome::Left) => {}
            Err(error) => failed = Some(error),
        }
    }
    if let Some(error) = failed {
        return Err(error);
    }
    if recovered.billed + recovered.released > 0 {
        warn!(
            billed = recovered.billed,
            released = recovered.released,
            "recovered calls a dead switch left open"
        );
    }
    Ok(recovered)
}

/// Orphans recovered at once.
const RECOVERY_CONCURRENCY: usize = 8;

/// What recovery did with one orphan.
enum Outcome {
    /// Charged by this pass: its legs' BYEs.
    Billed(Vec<LegBye>),
    /// Never answered: its hold given back.
    Released,
    /// Another node billed it first, or it cannot be rated yet.
    Left,
}

async fn recover_one(ledger: &Ledger, orphan: Orphan, now_ms: i64) -> Result<Outcome, StoreError> {
    let checkpoint = orphan
        .checkpoint
        .as_deref()
        .and_then(|text| serde_json::from_str::<Checkpoint>(text).ok());
    match (orphan.answered_at_ms, checkpoint) {
        (Some(answered_at_ms), Some(checkpoint)) => {
            if bill_answered(ledger, &orphan, answered_at_ms, &checkpoint, now_ms).await? {
                Ok(Outcome::Billed(checkpoint.byes))
            } else {
                Ok(Outcome::Left)
            }
        }
        _ => {
            ledger
                .store()
                .close_unanswered(&orphan.call_id, now_ms)
                .await?;
            Ok(Outcome::Released)
        }
    }
}

/// The answered time a dead node's call is billed for: answer to its last heartbeat, within
/// the authorized limit.
pub fn billed_ms(answered_at_ms: i64, heartbeat_ms: Option<i64>, limit_ms: i64) -> u64 {
    let until = heartbeat_ms.unwrap_or(answered_at_ms);
    let talked = until
        .saturating_sub(answered_at_ms)
        .clamp(0, limit_ms.max(0));
    u64::try_from(talked).unwrap_or(0)
}

/// Settles one answered orphan; true when this node's settle charged it (so it sends BYE).
async fn bill_answered(
    ledger: &Ledger,
    orphan: &Orphan,
    answered_at_ms: i64,
    checkpoint: &Checkpoint,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let talked_ms = billed_ms(
        answered_at_ms,
        orphan.node_heartbeat_ms,
        orphan.max_duration_ms,
    );
    let rated = ledger
        .rating_context(
            AccountId(checkpoint.account),
            checkpoint.card.map(CardId),
            &checkpoint.destination,
            checkpoint.toll_free,
            checkpoint.rated_at_ms,
            crate::ledger::PayerFacts::default(),
        )
        .await;
    let Ok((context, levels)) = rated else {
        warn!(reservation = %orphan.call_id, "cannot rate a recovered call; left for the next pass");
        return Ok(false);
    };
    let mut cdrs = [recovered_cdr(orphan, answered_at_ms, talked_ms, checkpoint)];
    let buy = checkpoint
        .buy_per_minute
        .as_deref()
        .and_then(|text| Decimal::from_str(text).ok());
    let before = ledger.store().reservation(&orphan.call_id).await?;
    if before.is_none_or(|reservation| reservation.state.as_str() != "open") {
        return Ok(false);
    }
    match ledger
        .settle(
            &orphan.call_id,
            Some(&context),
            &levels,
            talked_ms,
            buy,
            &mut cdrs,
            now_ms,
        )
        .await
    {
        Ok(charged) => {
            info!(reservation = %orphan.call_id, node = %orphan.node_id, talked_ms,
                  charged_micros = charged, "recovered call billed");
            Ok(true)
        }
        // Another node closed it first.
        Err(StoreError::ReservationClosed { .. } | StoreError::SettleConflict { .. }) => Ok(false),
        Err(error) => Err(error),
    }
}

fn recovered_cdr(
    orphan: &Orphan,
    answered_at_ms: i64,
    talked_ms: u64,
    checkpoint: &Checkpoint,
) -> Cdr {
    let cause = DisconnectCause::NodeLost;
    Cdr {
        call_id: orphan.call_id.clone(),
        attempt: 1,
        account_id: Some(checkpoint.account),
        card_id: checkpoint.card,
        caller_id: checkpoint.caller_id.clone().map(Pii::new),
        access_number: Some(checkpoint.access_number.clone()),
        destination: Pii::new(format!("+{}", checkpoint.destination)),
        carrier: Some(checkpoint.carrier.clone()),
        start_ms: checkpoint.started_ms,
        answer_ms: Some(answered_at_ms),
        end_ms: answered_at_ms.saturating_add(i64::try_from(talked_ms).unwrap_or(0)),
        billed_seconds: 0,
        fees_json: "{}".into(),
        taxes_json: "[]".into(),
        tax_micros: 0,
        total_micros: 0,
        buy_cost_micros: 0,
        sip_code: Some(200),
        q850_cause: Some(i64::from(cause.q850())),
        hangup_by: Some("switch".into()),
        disconnect_cause: Some(cause.as_str().into()),
    }
}

/// The heartbeat (every `heartbeat_ms`) and the sweep for dead nodes' calls (every half
/// lease), each its own task: neither ever holds up the core.
pub fn spawn_cluster_tasks(
    config: &crate::config::Config,
    ledger: std::sync::Arc<Ledger>,
    core: crate::server::CoreSender,
) {
    let beat = std::time::Duration::from_millis(config.cluster.heartbeat_ms.max(100));
    let lease = std::time::Duration::from_secs(config.cluster.node_lease_s.max(1));
    let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
    let store = ledger.store().clone();
    // Only a shared ledger has other nodes that could take this one for dead.
    let fence = matches!(store.kind(), talktime_store::BackendKind::Postgres);
    tokio::spawn(heartbeats(
        store,
        beat,
        fence.then_some(lease / 2),
        core.clone(),
    ));
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(lease / 2);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let now = crate::server::wall_clock_ms();
            match recover(&ledger, None, now, lease_ms).await {
                Ok(recovered) if !recovered.byes.is_empty() => {
                    let message = talktime_b2bua::Input::RecoveredByes(recovered.byes);
                    if core.send(message).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(error) => warn!(%error, "cannot sweep for dead nodes' calls"),
            }
        }
    });
}

/// Writes this node's heartbeat every `beat`, tells the core of a drain asked for, and, with
/// `fence_after`, whether the heartbeat is current: a write that has not succeeded for that
/// long (half the lease: a slow or unreachable database) makes the core refuse new calls
/// until one succeeds, before another node takes this one for dead and bills its calls.
async fn heartbeats(
    store: talktime_store::Store,
    beat: std::time::Duration,
    fence_after: Option<std::time::Duration>,
    core: crate::server::CoreSender,
) {
    let mut ticks = tokio::time::interval(beat);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut draining = false;
    let mut written = tokio::time::Instant::now();
    let mut late = false;
    loop {
        ticks.tick().await;
        let write = store.heartbeat(crate::server::wall_clock_ms());
        tokio::pin!(write);
        let result = loop {
            let deadline = fence_after.map(|after| written + after);
            tokio::select! {
                result = &mut write => break result,
                () = sleep_until(deadline), if !late && deadline.is_some() => {
                    late = true;
                    if core.send(talktime_b2bua::Input::Lease { current: false }).await.is_err() {
                        return;
                    }
                }
            }
        };
        let drain = match result {
            Ok(drain) => {
                written = tokio::time::Instant::now();
                if std::mem::take(&mut late) {
                    let current = talktime_b2bua::Input::Lease { current: true };
                    if core.send(current).await.is_err() {
                        return;
                    }
                }
                drain
            }
            Err(error) => {
                warn!(%error, "cannot write the heartbeat");
                // A database that fails at once is as late as one that does not answer.
                if !late && fence_after.is_some_and(|after| written.elapsed() >= after) {
                    late = true;
                    let lapsed = talktime_b2bua::Input::Lease { current: false };
                    if core.send(lapsed).await.is_err() {
                        return;
                    }
                }
                false
            }
        };
        // An operator asked this node to drain (`talktime nodes drain`): told once.
        if drain && !draining {
            draining = true;
            if core.send(talktime_b2bua::Input::Drain).await.is_err() {
                return;
            }
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recovered_call_is_billed_to_the_heartbeat_within_its_limit() {
        assert_eq!(billed_ms(1_000, Some(21_000), 60_000), 20_000);
        assert_eq!(
            billed_ms(1_000, Some(121_000), 60_000),
            60_000,
            "never past the limit"
        );
        assert_eq!(
            billed_ms(5_000, Some(4_000), 60_000),
            0,
            "answered after the last beat"
        );
        assert_eq!(billed_ms(5_000, None, 60_000), 0, "a node that never beat");
    }
}
