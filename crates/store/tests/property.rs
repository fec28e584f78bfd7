//! Property: after any sequence of ledger operations every balance equals the sum of its
//! transaction rows and matches an in-memory model. Runs on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use talktime_pii::Pii;
use talktime_store::{Decision, NewCard, Payer, Refusal, SettleOutcome, Store};

const NOW: i64 = 1_700_000_000_000;

#[derive(Clone, Debug)]
enum Operation {
    Recharge(i64),
    Refund(i64),
    Adjust(i64),
    Maintenance(i64),
    Activate(i64),
    Call {
        reserve: i64,
        cost: i64,
        replay: bool,
    },
    Dropped {
        reserve: i64,
    },
    OwnerRecharge(i64),
}

fn operation() -> impl Strategy<Value = Operation> {
    let amount = 0..5_000_000i64;
    prop_oneof![
        amount.clone().prop_map(Operation::Recharge),
        amount.clone().prop_map(Operation::Refund),
        (-3_000_000..3_000_000i64).prop_map(Operation::Adjust),
        (0..500_000i64).prop_map(Operation::Maintenance),
        (0..500_000i64).prop_map(Operation::Activate),
        (1..4_000_000i64, 0..4_000_000i64, any::<bool>()).prop_map(|(reserve, cost, replay)| {
            Operation::Call {
                reserve,
                cost,
                replay,
            }
        }),
        (1..4_000_000i64).prop_map(|reserve| Operation::Dropped { reserve }),
        amount.prop_map(Operation::OwnerRecharge),
    ]
}

/// Holds up to `wanted`, refusing only when nothing is free.
fn up_to(wanted: i64) -> impl FnOnce(&talktime_store::Available) -> Result<Decision, Refusal> {
    move |available| {
        if available.available_micros == 0 {
            return Err(Refusal::InsufficientCredit {
                available_micros: 0,
                needed_micros: wanted,
            });
        }
        Ok(Decision::new(wanted.min(available.available_micros), 1_000))
    }
}

async fn run_case(store: &Store, case: usize, with_owner: bool, operations: &[Operation]) {
    let owner = if with_owner {
        Some(common::uncapped_account(store, "owner", "EUR", 3_000_000, NOW).await)
    } else {
        None
    };
    let mut new_card = NewCard::new(Pii::new(format!("{case:012}")), "EUR", 2_000_000);
    new_card.owner_account_id = owner;
    let card = store.create_card(&new_card, NOW).await.unwrap();
    let (mut card_balance, mut owner_balance) = (2_000_000i64, 3_000_000i64);
    let mut activated = false;
    for (index, operation) in operations.iter().enumerate() {
        let call_id = format!("case-{case}-op-{index}");
        match *operation {
            Operation::Recharge(amount) => {
                store
                    .recharge(card.account_id, amount, None, NOW)
                    .await
                    .unwrap();
                card_balance += amount;
            }
            Operation::Refund(amount) => {
                store
                    .refund(card.account_id, amount, None, NOW)
                    .await
                    .unwrap();
                card_balance += amount;
            }
            Operation::Adjust(amount) => {
                store
                    .adjust(card.account_id, amount, None, NOW)
                    .await
                    .unwrap();
                card_balance += amount;
            }
            Operation::Maintenance(fee) => {
                store
                    .charge_maintenance(card.account_id, fee, None, NOW)
                    .await
                    .unwrap();
                card_balance -= fee;
            }
            Operation::Activate(fee) => {
                let first = store.activate_card(card.id, fee, NOW).await.unwrap();
                assert_eq!(first, !activated);
                if first {
                    card_balance -= fee;
                    activated = true;
                }
            }
            Operation::Call {
                reserve,
                cost,
                replay,
            } => {
                let free = card_balance.min(owner.map_or(card_balance, |_| owner_balance));
                let result = store
                    .authorize(&call_id, Payer::Card(card.id), NOW, up_to(reserve))
                    .await;
                if free <= 0 {
                    assert!(result.is_err(), "no credit, yet admitted");
                    continue;
                }
                let reservation = result.unwrap();
                assert_eq!(reservation.amount_micros, reserve.min(free));
                store.settle(&call_id, cost, &[], NOW).await.unwrap();
                card_balance -= cost;
                if owner.is_some() {
                    owner_balance -= cost;
                }
                if replay {
                    let again = store.settle(&call_id, cost, &[], NOW).await.unwrap();
                    assert_eq!(
                        again,
                        SettleOutcome::Replayed {
                            charged_micros: cost
                        }
                    );
                }
            }
            Operation::Dropped { reserve } => {
                let authorized = store
                    .authorize(&call_id, Payer::Card(card.id), NOW, up_to(reserve))
                    .await;
                if authorized.is_ok() {
                    store.release(&call_id, NOW).await.unwrap();
                }
            }
            Operation::OwnerRecharge(amount) => {
                if let Some(owner) = owner {
                    store.recharge(owner, amount, None, NOW).await.unwrap();
                    owner_balance += amount;
                }
            }
        }
    }
    assert_eq!(store.balance(card.account_id).await.unwrap(), card_balance);
    let mut accounts = vec![(card.account_id, card_balance)];
    if let Some(owner) = owner {
        assert_eq!(store.balance(owner).await.unwrap(), owner_balance);
        accounts.push((owner, owner_balance));
    }
    for (account, balance) in accounts {
        let entries = store.transactions(account).await.unwrap();
        assert_eq!(
            entries.iter().map(|e| e.amount_micros).sum::<i64>(),
            balance
        );
        assert!(store.open_reservations(account).await.unwrap().is_empty());
    }
    assert!(store.check_balances().await.unwrap().is_empty());
}

fn check_backend(postgres: bool) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let database = runtime.block_on(async {
        if postgres {
            common::TestDb::postgres().await
        } else {
            common::TestDb::sqlite().await
        }
    });
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::sync::atomic::AtomicUsize::new(0);
    let strategy = (any::<bool>(), prop::collection::vec(operation(), 1..30));
    let result = runner.run(&strategy, |(with_owner, operations)| {
        let case = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        runtime.block_on(run_case(&database.store, case, with_owner, &operations));
        Ok(())
    });
    runtime.block_on(database.finish());
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

#[test]
fn balances_equal_their_transaction_log_on_sqlite() {
    check_backend(false);
}

#[test]
fn balances_equal_their_transaction_log_on_postgres() {
    check_backend(true);
}
