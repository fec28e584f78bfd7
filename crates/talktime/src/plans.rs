//! The maintenance-fee scheduler of the running switch: every `[billing]
//! maintenance_check_ms` it books each maintenance period that fell due (one posting per
//! period, keyed by its instant, so a switch that was down catches up and two nodes never
//! charge one period twice). Its own task: never in the core loop.

use std::sync::Arc;
use std::time::Duration;

use talktime_store::{Store, StoreError};
use tracing::{info, warn};

use crate::ledger::Ledger;

/// Periods booked per account and pass: a long outage is caught up over a few passes.
const CATCH_UP_PER_PASS: usize = 1_000;

/// Books every maintenance period due by `now_ms`; returns how many were booked.
pub async fn charge_due_maintenance(store: &Store, now_ms: i64) -> Result<usize, StoreError> {
    let mut booked = 0;
    for due in store.maintenance_plans().await? {
        let Some(anchor) = due.anchor_ms else {
            continue; // a card not used yet
        };
        let plan = &due.plan;
        let instants = talktime_billing::due_instants(
            anchor,
            plan.maintenance_every_ms,
            plan.maintenance_charged_until_ms,
            now_ms,
            CATCH_UP_PER_PASS,
        );
        let charged = store
            .charge_maintenance_periods(
                plan.account_id,
                plan.maintenance_fee_micros,
                plan.maintenance_charged_until_ms,
                &instants,
                now_ms,
            )
            .await?;
        if charged > 0 {
            info!(
                account = plan.account_id,
                periods = charged,
                "maintenance fee charged"
            );
        }
        booked += charged;
    }
    Ok(booked)
}

/// Runs [`charge_due_maintenance`] every `every`.
pub fn spawn_maintenance(ledger: Arc<Ledger>, every: Duration) {
    let store = ledger.store().clone();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticks.tick().await;
            if let Err(error) = charge_due_maintenance(&store, crate::server::wall_clock_ms()).await
            {
                warn!(%error, "cannot charge maintenance fees");
            }
        }
    });
}
