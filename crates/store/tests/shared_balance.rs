//! Shared balances (issue 16, seed 004): many phones on one account, with a low-balance rule
//! that below its threshold allows one call at a time and caps what a call may hold. On SQLite
//! and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use talktime_store::*;

const UNIT: i64 = MICROS_PER_UNIT;
const NOW: i64 = 1_700_000_000_000;

/// Holds as much as the ledger lets this call hold, at most `wanted`.
fn hold_up_to(wanted: i64) -> impl FnOnce(&Available) -> Result<Decision, Refusal> {
    move |available: &Available| {
        Ok(Decision::new(
            wanted.min(available.available_micros),
            60_000,
        ))
    }
}

async fn office(store: &Store, balance: i64) -> Account {
    let mut shared = NewAccount::new("office", "USD");
    shared.concurrency_limit = 5;
    let account = store.create_account(&shared, NOW).await.unwrap();
    store
        .recharge(account.id, balance, None, NOW)
        .await
        .unwrap();
    let rule = LowBalanceRule {
        below_micros: 5 * UNIT,
        calls: 1,
        call_cap_micros: Some(UNIT),
    };
    store
        .set_low_balance_rule(account.id, Some(rule))
        .await
        .unwrap();
    assert_eq!(
        store.low_balance_rule(account.id).await.unwrap(),
        Some(rule)
    );
    account
}

ledger_test!(
    above_the_threshold_the_phones_share_the_balance_freely,
    |store| {
        let account = office(store, 20 * UNIT).await;
        let payer = Payer::Account(account.id);
        for call in ["a", "b", "c"] {
            let held = store
                .authorize(call, payer, NOW, hold_up_to(2 * UNIT))
                .await
                .unwrap();
            assert_eq!(held.amount_micros, 2 * UNIT, "call {call}");
        }
        assert_eq!(store.open_reservations(account.id).await.unwrap().len(), 3);
    }
);

ledger_test!(below_the_threshold_one_call_at_a_time_and_capped, |store| {
    let account = office(store, 4 * UNIT).await;
    let payer = Payer::Account(account.id);
    let first = store
        .authorize("a", payer, NOW, hold_up_to(3 * UNIT))
        .await
        .unwrap();
    assert_eq!(first.amount_micros, UNIT, "the cap, not the 3.00 asked");
    let second = store.authorize("b", payer, NOW, hold_up_to(UNIT)).await;
    assert!(
        matches!(second, Err(StoreError::ConcurrencyLimit { limit: 1, .. })),
        "{second:?}"
    );
    store.release("a", NOW).await.unwrap();
    store
        .authorize("b", payer, NOW, hold_up_to(UNIT))
        .await
        .unwrap();
    // Held calls count: 6.00 with 2.00 held is below 5.00 of free credit.
    store.release("b", NOW).await.unwrap();
    store
        .recharge(account.id, 2 * UNIT, None, NOW)
        .await
        .unwrap();
    store
        .authorize("c", payer, NOW, hold_up_to(2 * UNIT))
        .await
        .unwrap();
    let limited = store.authorize("d", payer, NOW, hold_up_to(UNIT)).await;
    assert!(
        matches!(limited, Err(StoreError::ConcurrencyLimit { .. })),
        "{limited:?}"
    );
    // Without the rule the shared balance takes them again.
    store.set_low_balance_rule(account.id, None).await.unwrap();
    store
        .authorize("d", payer, NOW, hold_up_to(UNIT))
        .await
        .unwrap();
});
