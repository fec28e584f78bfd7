//! Ledger behaviour, every test on both SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::sync::Arc;

use talktime_pii::Pii;
use talktime_store::*;

const UNIT: i64 = MICROS_PER_UNIT;
const NOW: i64 = 1_700_000_000_000;

/// Holds `amount` when that much is free, refuses otherwise.
fn hold(amount: i64) -> impl FnOnce(&Available) -> Result<Decision, Refusal> {
    move |available: &Available| {
        if available.available_micros < amount {
            return Err(Refusal::InsufficientCredit {
                available_micros: available.available_micros,
                needed_micros: amount,
            });
        }
        Ok(Decision::new(amount, 60_000))
    }
}

fn pin(text: &str) -> Pii<String> {
    Pii::new(text.to_owned())
}

async fn card_with(store: &Store, pin_text: &str, value: i64, limit: i64) -> Card {
    let mut card = NewCard::new(pin(pin_text), "EUR", value);
    card.concurrency_limit = limit;
    store.create_card(&card, NOW).await.unwrap()
}

/// Runs `count` authorizations at once on separate tasks (and pool connections).
async fn authorize_in_parallel(
    store: &Store,
    payer: Payer,
    count: usize,
    amount: i64,
) -> Vec<Result<Reservation, StoreError>> {
    let barrier = Arc::new(tokio::sync::Barrier::new(count));
    let tasks: Vec<_> = (0..count)
        .map(|index| {
            let store = store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .authorize(&format!("call-{index}"), payer, NOW, hold(amount))
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test]
async fn schema_is_the_same_on_both_backends() {
    let sqlite = common::TestDb::sqlite().await;
    let postgres = common::TestDb::postgres().await;
    let sqlite_columns = sqlite.store.schema_columns().await.unwrap();
    let postgres_columns = postgres.store.schema_columns().await.unwrap();
    assert!(sqlite_columns.len() > 80, "{sqlite_columns:?}");
    let tables: std::collections::BTreeSet<&str> =
        sqlite_columns.iter().map(|(t, _, _)| t.as_str()).collect();
    for table in [
        "accounts",
        "cards",
        "caller_ids",
        "card_batches",
        "tariffs",
        "rates",
        "transactions",
        "reservations",
        "cdrs",
        "pin_failures",
    ] {
        assert!(tables.contains(table), "missing {table}");
    }
    assert_eq!(sqlite_columns, postgres_columns);
    for (table, column) in [
        ("accounts", "forward_destination"),
        ("cdrs", "disconnect_cause"),
    ] {
        let expected = (table.to_owned(), column.to_owned(), "text".to_owned());
        assert!(
            sqlite_columns.contains(&expected),
            "missing {table}.{column}"
        );
    }
    for (table, column, column_type) in &sqlite_columns {
        assert!(
            column_type == "int64" || column_type == "text",
            "{table}.{column} is {column_type}: only 64-bit integers and text are allowed"
        );
    }
    sqlite.finish().await;
    postgres.finish().await;
}

#[tokio::test]
async fn open_creates_the_data_directory_and_reopens_it() {
    let directory = std::env::temp_dir().join(format!("talktime_open_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    let location = directory.join("nested").to_string_lossy().into_owned();
    let store = Store::open(&location).await.unwrap();
    assert_eq!(store.kind(), BackendKind::Sqlite);
    let account = store
        .create_account(&NewAccount::new("a", "EUR"), NOW)
        .await
        .unwrap();
    store.close().await;
    assert!(directory.join("nested").join(SQLITE_FILE_NAME).exists());
    let store = Store::open(&location).await.unwrap();
    assert_eq!(store.account(account.id).await.unwrap().name, "a");
    store.close().await;
    assert!(matches!(
        Store::open("mysql://localhost/x").await,
        Err(StoreError::UnsupportedLocation(_))
    ));
    std::fs::remove_dir_all(&directory).unwrap();
}

ledger_test!(credit_for_one_call_admits_exactly_one_of_100, |store| {
    // Unlimited concurrency, so only the credit decides.
    let card = card_with(store, "111111", 10 * UNIT, 0).await;
    let results = authorize_in_parallel(store, Payer::Card(card.id), 100, 6 * UNIT).await;
    let admitted = results.iter().filter(|result| result.is_ok()).count();
    assert_eq!(admitted, 1);
    for result in &results {
        if let Err(error) = result {
            assert!(
                matches!(
                    error,
                    StoreError::Refused(Refusal::InsufficientCredit { .. })
                ),
                "{error}"
            );
        }
    }
    assert_eq!(
        store
            .open_reservations(card.account_id)
            .await
            .unwrap()
            .len(),
        1
    );
});

ledger_test!(a_card_carries_one_call_at_a_time, |store| {
    let card = card_with(store, "222222", 1_000 * UNIT, 1).await;
    let results = authorize_in_parallel(store, Payer::Card(card.id), 100, UNIT).await;
    let admitted: Vec<&Reservation> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(admitted.len(), 1);
    assert!(results.iter().all(|result| match result {
        Ok(_) => true,
        Err(error) => matches!(error, StoreError::ConcurrencyLimit { limit: 1, .. }),
    }));
    // Once the call ends, the next one is admitted.
    store.release(&admitted[0].call_id, NOW).await.unwrap();
    store
        .authorize("next", Payer::Card(card.id), NOW, hold(UNIT))
        .await
        .unwrap();
});

ledger_test!(shared_account_limit_of_three, |store| {
    let mut shared = NewAccount::new("office", "EUR");
    shared.concurrency_limit = 3;
    let account = store.create_account(&shared, NOW).await.unwrap();
    store
        .recharge(account.id, 1_000 * UNIT, None, NOW)
        .await
        .unwrap();
    let results = authorize_in_parallel(store, Payer::Account(account.id), 100, UNIT).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    assert_eq!(store.open_reservations(account.id).await.unwrap().len(), 3);
    let balance = store.balance(account.id).await.unwrap();
    assert_eq!(
        balance,
        1_000 * UNIT,
        "holding credit does not change the balance"
    );
});

ledger_test!(owner_balance_bounds_the_card_and_pays_too, |store| {
    // Seed 002, tip 2: 5 EUR on the customer account, 10 EUR on its card.
    let mut owner = NewAccount::new("customer", "EUR");
    owner.concurrency_limit = 0;
    let owner = store.create_account(&owner, NOW).await.unwrap();
    store.recharge(owner.id, 5 * UNIT, None, NOW).await.unwrap();
    let mut card = NewCard::new(pin("333333"), "EUR", 10 * UNIT);
    card.owner_account_id = Some(owner.id);
    let card = store.create_card(&card, NOW).await.unwrap();
    let mut seen = None;
    store
        .authorize("c1", Payer::Card(card.id), NOW, |available| {
            seen = Some(available.clone());
            Ok(Decision::new(available.available_micros, 1))
        })
        .await
        .unwrap();
    let seen = seen.unwrap();
    assert_eq!(seen.balance_micros, 10 * UNIT);
    assert_eq!(seen.owner_available_micros, Some(5 * UNIT));
    assert_eq!(seen.available_micros, 5 * UNIT);
    // The owner's own calls see the card's hold.
    let refused = store
        .authorize("c2", Payer::Account(owner.id), NOW, hold(UNIT))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Refused(_))),
        "{refused:?}"
    );
    store.settle("c1", 4 * UNIT, &[], NOW).await.unwrap();
    assert_eq!(store.balance(card.account_id).await.unwrap(), 6 * UNIT);
    assert_eq!(store.balance(owner.id).await.unwrap(), UNIT);
    assert!(store.check_balances().await.unwrap().is_empty());
});

ledger_test!(the_same_settle_twice_charges_once, |store| {
    let card = card_with(store, "444444", 10 * UNIT, 1).await;
    store
        .authorize("call", Payer::Card(card.id), NOW, hold(5 * UNIT))
        .await
        .unwrap();
    let first = store.settle("call", 1_234_567, &[], NOW + 1).await.unwrap();
    assert_eq!(
        first,
        SettleOutcome::Charged {
            charged_micros: 1_234_567,
            balance_after_micros: 10 * UNIT - 1_234_567,
        }
    );
    let second = store.settle("call", 1_234_567, &[], NOW + 2).await.unwrap();
    assert_eq!(
        second,
        SettleOutcome::Replayed {
            charged_micros: 1_234_567
        }
    );
    assert_eq!(
        store.balance(card.account_id).await.unwrap(),
        10 * UNIT - 1_234_567
    );
    let charges = store
        .transactions(card.account_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.kind == TransactionKind::CallCharge)
        .count();
    assert_eq!(charges, 1);
    let reservation = store.reservation("call").await.unwrap().unwrap();
    assert_eq!(reservation.state, ReservationState::Settled);
});

ledger_test!(two_different_settles_charge_once, |store| {
    let card = card_with(store, "555555", 10 * UNIT, 0).await;
    // Sequential: the second is a conflict.
    store
        .authorize("a", Payer::Card(card.id), NOW, hold(UNIT))
        .await
        .unwrap();
    store.settle("a", 700_000, &[], NOW).await.unwrap();
    let conflict = store.settle("a", 900_000, &[], NOW).await;
    assert!(matches!(
        conflict,
        Err(StoreError::SettleConflict {
            charged_micros: 700_000,
            requested_micros: 900_000
        })
    ));
    // Concurrent: 20 settles with different amounts race; exactly one charges.
    store
        .authorize("b", Payer::Card(card.id), NOW, hold(UNIT))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|index| {
            let store = store.clone();
            tokio::spawn(async move { store.settle("b", 10_000 * (index + 1), &[], NOW).await })
        })
        .collect();
    let mut charged = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(SettleOutcome::Charged { charged_micros, .. }) => charged.push(charged_micros),
            Ok(other) => panic!("unexpected {other:?}"),
            Err(error) => assert!(
                matches!(error, StoreError::SettleConflict { .. }),
                "{error}"
            ),
        }
    }
    assert_eq!(charged.len(), 1);
    assert_eq!(
        store.balance(card.account_id).await.unwrap(),
        10 * UNIT - 700_000 - charged[0]
    );
    assert!(store.check_balances().await.unwrap().is_empty());
});

ledger_test!(release_and_settle_exclude_each_other, |store| {
    let card = card_with(store, "666666", 10 * UNIT, 0).await;
    store
        .authorize("r", Payer::Card(card.id), NOW, hold(UNIT))
        .await
        .unwrap();
    assert_eq!(
        store.release("r", NOW).await.unwrap(),
        ReleaseOutcome::Released
    );
    assert_eq!(
        store.release("r", NOW).await.unwrap(),
        ReleaseOutcome::AlreadyReleased
    );
    assert!(matches!(
        store.settle("r", 1, &[], NOW).await,
        Err(StoreError::ReservationClosed { .. })
    ));
    store
        .authorize("s", Payer::Card(card.id), NOW, hold(UNIT))
        .await
        .unwrap();
    store.settle("s", 1, &[], NOW).await.unwrap();
    assert!(matches!(
        store.release("s", NOW).await,
        Err(StoreError::ReservationClosed { .. })
    ));
    assert!(matches!(
        store.settle("nope", 1, &[], NOW).await,
        Err(StoreError::UnknownCall)
    ));
    assert!(matches!(
        store.release("nope", NOW).await,
        Err(StoreError::UnknownCall)
    ));
    assert!(matches!(
        store
            .authorize("s", Payer::Card(card.id), NOW, hold(UNIT))
            .await,
        Err(StoreError::CallIdInUse)
    ));
    assert_eq!(store.balance(card.account_id).await.unwrap(), 10 * UNIT - 1);
});

ledger_test!(decisions_are_bounded_by_available_credit, |store| {
    let card = card_with(store, "777777", 2 * UNIT, 0).await;
    let too_much = store
        .authorize("x", Payer::Card(card.id), NOW, |_| {
            Ok(Decision::new(3 * UNIT, 1))
        })
        .await;
    assert!(matches!(
        too_much,
        Err(StoreError::ReservationTooLarge {
            requested_micros: 3_000_000,
            available_micros: 2_000_000
        })
    ));
    let refused = store
        .authorize("y", Payer::Card(card.id), NOW, |_| Err(Refusal::NoRate))
        .await;
    assert!(matches!(refused, Err(StoreError::Refused(Refusal::NoRate))));
    assert!(store.reservation("x").await.unwrap().is_none());
    assert!(store.reservation("y").await.unwrap().is_none());
});

ledger_test!(card_life_cycle, |store| {
    let mut new_card = NewCard::new(pin("8080808080"), "EUR", 5 * UNIT);
    new_card.kind = CardKind::Disposable;
    new_card.expiry = ExpiryRule {
        expires_at_ms: Some(NOW + 1_000_000),
        valid_after_first_use_ms: Some(1_000),
    };
    let card = store.create_card(&new_card, NOW).await.unwrap();
    assert!(!format!("{card:?}").contains("8080808080"));
    let found = store
        .card_by_pin(&pin("8080808080"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, card);
    assert!(store.card_by_pin(&pin("0000")).await.unwrap().is_none());
    assert!(matches!(
        store.create_card(&new_card, NOW).await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        store.recharge(card.account_id, UNIT, None, NOW).await,
        Err(StoreError::DisposableCard { .. })
    ));
    assert!(
        store
            .activate_card(card.id, 250_000, NOW + 10)
            .await
            .unwrap()
    );
    assert!(
        !store
            .activate_card(card.id, 250_000, NOW + 20)
            .await
            .unwrap()
    );
    assert_eq!(store.balance(card.account_id).await.unwrap(), 4_750_000);
    let activated = store.card(card.id).await.unwrap();
    assert_eq!(activated.status, CardStatus::Active);
    assert_eq!(activated.first_used_at_ms, Some(NOW + 10));
    // Valid 1 s after first use.
    store
        .authorize("in-time", Payer::Card(card.id), NOW + 500, hold(UNIT))
        .await
        .unwrap();
    store.release("in-time", NOW + 600).await.unwrap();
    assert!(matches!(
        store
            .authorize("late", Payer::Card(card.id), NOW + 1_010, hold(UNIT))
            .await,
        Err(StoreError::NotUsable { .. })
    ));
    assert_eq!(store.expire_cards(NOW + 1_010).await.unwrap(), 1);
    assert_eq!(
        store.card(card.id).await.unwrap().status,
        CardStatus::Expired
    );
    assert_eq!(store.expire_cards(NOW + 2_000).await.unwrap(), 0);
    store
        .charge_maintenance(card.account_id, 100_000, Some("monthly"), NOW + 2_000)
        .await
        .unwrap();
    let kinds: Vec<TransactionKind> = store
        .transactions(card.account_id)
        .await
        .unwrap()
        .iter()
        .map(|entry| entry.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            TransactionKind::Recharge,
            TransactionKind::Activation,
            TransactionKind::Maintenance
        ]
    );
    // Blocked cards are refused.
    let other = card_with(store, "9090909090", UNIT, 1).await;
    store
        .set_card_status(other.id, CardStatus::Blocked)
        .await
        .unwrap();
    assert!(matches!(
        store
            .authorize("blocked", Payer::Card(other.id), NOW, hold(1))
            .await,
        Err(StoreError::NotUsable { .. })
    ));
});

ledger_test!(money_operations_post_rows, |store| {
    let account = store
        .create_account(&NewAccount::new("a", "USD"), NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .recharge(account.id, 10 * UNIT, Some("pay-1"), NOW)
            .await
            .unwrap(),
        10 * UNIT
    );
    assert_eq!(
        store.refund(account.id, 500_000, None, NOW).await.unwrap(),
        10_500_000
    );
    assert_eq!(
        store
            .adjust(account.id, -1_500_000, Some("ops"), NOW)
            .await
            .unwrap(),
        9 * UNIT
    );
    assert!(matches!(
        store.recharge(account.id, -1, None, NOW).await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        store.recharge(999_999, 1, None, NOW).await,
        Err(StoreError::NotFound { .. })
    ));
    let entries = store.transactions(account.id).await.unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(
        entries
            .iter()
            .map(|e| e.balance_after_micros)
            .collect::<Vec<_>>(),
        [10 * UNIT, 10_500_000, 9 * UNIT]
    );
    assert_eq!(entries[0].reference.as_deref(), Some("pay-1"));
    assert_eq!(
        entries.iter().map(|e| e.amount_micros).sum::<i64>(),
        9 * UNIT
    );
    store
        .set_account_status(account.id, AccountStatus::Blocked)
        .await
        .unwrap();
    assert!(matches!(
        store
            .authorize("b", Payer::Account(account.id), NOW, hold(1))
            .await,
        Err(StoreError::NotUsable { .. })
    ));
    assert!(store.check_balances().await.unwrap().is_empty());
});

ledger_test!(caller_id_recognition_and_pin_lockout, |store| {
    let mut account = NewAccount::new("pinless", "EUR");
    account.caller_id_min_balance_micros = UNIT;
    let account = store.create_account(&account, NOW).await.unwrap();
    store
        .recharge(account.id, 2 * UNIT, None, NOW)
        .await
        .unwrap();
    let number = pin("+15551234567");
    store
        .register_caller_id(account.id, &number, NOW)
        .await
        .unwrap();
    let found = store.lookup_caller_id(&number).await.unwrap().unwrap();
    assert_eq!(found.account_id, account.id);
    assert!(found.recognised);
    // Seed 002, tip 1: below the threshold the number is no longer recognised.
    store
        .adjust(account.id, -1_500_000, None, NOW)
        .await
        .unwrap();
    let found = store.lookup_caller_id(&number).await.unwrap().unwrap();
    assert!(!found.recognised);
    assert_eq!(found.balance_micros, 500_000);
    assert!(
        store
            .lookup_caller_id(&pin("+1999"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.remove_caller_id(&number).await.unwrap());
    assert!(store.lookup_caller_id(&number).await.unwrap().is_none());

    let policy = LockoutPolicy {
        max_failures: 3,
        window_ms: 60_000,
        lockout_ms: 600_000,
    };
    let caller = pin("+4930123456");
    assert_eq!(store.pin_lockout(&caller, NOW).await.unwrap(), None);
    for expected in 1..=2 {
        let state = store
            .record_pin_failure(&caller, policy, NOW + expected)
            .await
            .unwrap();
        assert_eq!(state.failures, expected);
        assert_eq!(state.locked_until_ms, None);
    }
    let state = store
        .record_pin_failure(&caller, policy, NOW + 3)
        .await
        .unwrap();
    assert_eq!(state.locked_until_ms, Some(NOW + 3 + 600_000));
    assert_eq!(
        store.pin_lockout(&caller, NOW + 10).await.unwrap(),
        Some(NOW + 600_003)
    );
    assert_eq!(
        store.pin_lockout(&caller, NOW + 600_003).await.unwrap(),
        None
    );
    // After the window, counting starts again.
    let state = store
        .record_pin_failure(&caller, policy, NOW + 700_000)
        .await
        .unwrap();
    assert_eq!(state.failures, 1);
    store.clear_pin_failures(&caller).await.unwrap();
    assert_eq!(
        store.pin_lockout(&caller, NOW + 700_001).await.unwrap(),
        None
    );
    // Cleared: the next failure is the first again (it would be the second otherwise).
    let state = store
        .record_pin_failure(&caller, policy, NOW + 700_002)
        .await
        .unwrap();
    assert_eq!(state.failures, 1);
    // A caller who never failed has nothing to clear.
    store.clear_pin_failures(&pin("+4930999999")).await.unwrap();
});

ledger_test!(forward_destination_is_set_looked_up_and_cleared, |store| {
    let account = store
        .create_account(&NewAccount::new("forwarded", "USD"), NOW)
        .await
        .unwrap();
    assert_eq!(account.forward_destination, None);
    let caller = pin("+17035550123");
    store
        .register_caller_id(account.id, &caller, NOW)
        .await
        .unwrap();
    let found = store.lookup_caller_id(&caller).await.unwrap().unwrap();
    assert_eq!(found.forward_destination, None);

    let india = pin("00919876543210");
    store
        .set_forward_destination(account.id, Some(&india))
        .await
        .unwrap();
    let found = store.lookup_caller_id(&caller).await.unwrap().unwrap();
    assert_eq!(found.forward_destination, Some(india.clone()));
    assert_eq!(
        store.account(account.id).await.unwrap().forward_destination,
        Some(india)
    );
    // The destination is PII: never in Debug output.
    assert!(!format!("{found:?}").contains("9876543210"));

    // Another account's callers are not forwarded there.
    let other = store
        .create_account(&NewAccount::new("other", "USD"), NOW)
        .await
        .unwrap();
    let other_caller = pin("+17035550999");
    store
        .register_caller_id(other.id, &other_caller, NOW)
        .await
        .unwrap();
    let found = store
        .lookup_caller_id(&other_caller)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.forward_destination, None);

    store
        .set_forward_destination(account.id, None)
        .await
        .unwrap();
    let found = store.lookup_caller_id(&caller).await.unwrap().unwrap();
    assert_eq!(found.forward_destination, None);
    assert!(matches!(
        store
            .set_forward_destination(account.id, Some(&pin("  ")))
            .await,
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(matches!(
        store
            .set_forward_destination(999_999, Some(&pin("+4930123")))
            .await,
        Err(StoreError::NotFound { .. })
    ));
});

fn sample_cdr(call_id: &str, attempt: i64, total: i64) -> Cdr {
    Cdr {
        call_id: call_id.to_owned(),
        attempt,
        account_id: None,
        card_id: None,
        caller_id: Some(pin("+15550001111")),
        access_number: Some("+18005550100".into()),
        destination: pin("4930123456"),
        carrier: Some("carrier-a".into()),
        start_ms: NOW,
        answer_ms: Some(NOW + 2_000),
        end_ms: NOW + 62_000,
        billed_seconds: 60,
        fees_json: r#"[{"name":"connection","micros":100000}]"#.into(),
        taxes_json: "[]".into(),
        tax_micros: 0,
        total_micros: total,
        buy_cost_micros: total / 2,
        sip_code: Some(200),
        q850_cause: Some(16),
        hangup_by: Some("caller".into()),
        disconnect_cause: Some("credit_exhausted".into()),
    }
}

ledger_test!(
    an_attempt_that_costs_nothing_writes_its_cdr_and_no_ledger_line,
    |store| {
        let card = card_with(store, "131313", 10 * UNIT, 1).await;
        store
            .authorize("abandoned", Payer::Card(card.id), NOW, hold(UNIT))
            .await
            .unwrap();
        let mut cdr = sample_cdr("abandoned", 1, 0);
        cdr.answer_ms = None;
        cdr.billed_seconds = 0;
        cdr.sip_code = Some(487);
        let settled = store
            .settle("abandoned", 0, std::slice::from_ref(&cdr), NOW + 1)
            .await
            .unwrap();
        assert_eq!(
            settled,
            SettleOutcome::Charged {
                charged_micros: 0,
                balance_after_micros: 10 * UNIT,
            }
        );
        assert_eq!(
            store.settle("abandoned", 0, &[], NOW + 2).await.unwrap(),
            SettleOutcome::Replayed { charged_micros: 0 }
        );
        // The card's value is its one line.
        assert_eq!(store.transactions(card.account_id).await.unwrap().len(), 1);
        assert_eq!(store.cdrs_for_call("abandoned").await.unwrap(), vec![cdr]);
        let reservation = store.reservation("abandoned").await.unwrap().unwrap();
        assert_eq!(reservation.state, ReservationState::Settled);
        assert!(
            store
                .open_reservations(card.account_id)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(store.check_balances().await.unwrap().is_empty());
    }
);

ledger_test!(settle_writes_cdrs_once, |store| {
    let card = card_with(store, "121212", 10 * UNIT, 1).await;
    store
        .authorize("cdr-call", Payer::Card(card.id), NOW, hold(UNIT))
        .await
        .unwrap();
    let mut failed = sample_cdr("cdr-call", 1, 0);
    failed.answer_ms = None;
    failed.sip_code = Some(503);
    failed.q850_cause = Some(34);
    failed.disconnect_cause = Some("failed".into());
    assert!(store.write_cdr(&failed, NOW).await.unwrap());
    assert!(!store.write_cdr(&failed, NOW).await.unwrap());
    let answered = sample_cdr("cdr-call", 2, 420_000);
    store
        .settle("cdr-call", 420_000, std::slice::from_ref(&answered), NOW)
        .await
        .unwrap();
    store
        .settle("cdr-call", 420_000, std::slice::from_ref(&answered), NOW)
        .await
        .unwrap();
    let cdrs = store.cdrs_for_call("cdr-call").await.unwrap();
    assert_eq!(cdrs, vec![failed, answered]);
    assert_eq!(cdrs[0].disconnect_cause.as_deref(), Some("failed"));
    assert_eq!(
        cdrs[1].disconnect_cause.as_deref(),
        Some("credit_exhausted")
    );
    assert!(!format!("{cdrs:?}").contains("4930123456"));
});

ledger_test!(cdr_disconnect_cause_may_be_absent, |store| {
    let mut cdr = sample_cdr("no-cause", 1, 0);
    cdr.disconnect_cause = None;
    assert!(store.write_cdr(&cdr, NOW).await.unwrap());
    let mut busy = sample_cdr("no-cause", 2, 0);
    busy.disconnect_cause = Some("busy".into());
    assert!(store.write_cdr(&busy, NOW).await.unwrap());
    let causes: Vec<Option<String>> = store
        .cdrs_for_call("no-cause")
        .await
        .unwrap()
        .into_iter()
        .map(|cdr| cdr.disconnect_cause)
        .collect();
    assert_eq!(causes, vec![None, Some("busy".to_owned())]);
});

ledger_test!(reconcile_settles_from_cdrs_and_releases_the_rest, |store| {
    let card = card_with(store, "343434", 10 * UNIT, 0).await;
    for call in ["with-cdr", "without-cdr", "fresh"] {
        let at = if call == "fresh" { NOW + 5_000 } else { NOW };
        store
            .authorize(call, Payer::Card(card.id), at, hold(2 * UNIT))
            .await
            .unwrap();
    }
    store
        .write_cdr(&sample_cdr("with-cdr", 1, 1_500_000), NOW)
        .await
        .unwrap();
    let report = store.reconcile(NOW + 1_000, NOW + 10_000).await.unwrap();
    assert_eq!(report.settled, vec![("with-cdr".to_owned(), 1_500_000)]);
    assert_eq!(report.released, vec!["without-cdr".to_owned()]);
    let open = store.open_reservations(card.account_id).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].call_id, "fresh");
    assert_eq!(
        store.balance(card.account_id).await.unwrap(),
        10 * UNIT - 1_500_000
    );
    // Running it again changes nothing.
    let again = store.reconcile(NOW + 1_000, NOW + 20_000).await.unwrap();
    assert_eq!(again, ReconcileReport::default());
});

ledger_test!(card_batches_have_unique_pins_and_export, |store| {
    let tariff = store
        .create_tariff("cards 60/60", "EUR", "{}", NOW)
        .await
        .unwrap();
    let spec = CardBatchSpec {
        name: "Calling card user batch 1".into(),
        count: 300,
        pin_length: 10,
        value_micros: 5 * UNIT,
        currency: "EUR".into(),
        tariff_id: Some(tariff.id),
        kind: CardKind::Disposable,
        expiry: ExpiryRule {
            expires_at_ms: Some(NOW + 86_400_000),
            valid_after_first_use_ms: None,
        },
        owner_account_id: None,
        activation_fee_micros: 0,
        caller_id_min_balance_micros: 0,
        concurrency_limit: 1,
        reseller_id: None,
    };
    let batch = store.generate_cards(&spec, NOW).await.unwrap();
    assert_eq!(batch.card_ids.len(), 300);
    let mut csv_bytes = Vec::new();
    let written = store
        .export_batch_csv(&batch, &mut csv_bytes)
        .await
        .unwrap();
    assert_eq!(written, 300);
    let mut reader = csv::Reader::from_reader(csv_bytes.as_slice());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[1], "pin");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 300);
    let pins: std::collections::HashSet<String> =
        rows.iter().map(|row| row[1].to_owned()).collect();
    assert_eq!(pins.len(), 300, "PINs are unique");
    for row in &rows {
        assert_eq!(row[1].len(), 10);
        assert!(row[1].bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(&row[2], "5");
        assert_eq!(&row[4], "disposable");
    }
    // Spot-check: each exported PIN finds its card, and no Debug output shows it.
    let first_pin = rows[0][1].to_owned();
    let card = store.card_by_pin(&pin(&first_pin)).await.unwrap().unwrap();
    assert_eq!(card.batch_id, Some(batch.id));
    assert_eq!(card.tariff_id, Some(tariff.id));
    assert!(!format!("{card:?}").contains(&first_pin));
    assert!(!format!("{batch:?}").contains(&first_pin));
    assert!(store.check_balances().await.unwrap().is_empty());
    // A tiny PIN space is refused up front.
    let crowded = CardBatchSpec {
        count: 1_001,
        pin_length: 4,
        ..spec.clone()
    };
    assert!(matches!(
        store.generate_cards(&crowded, NOW).await,
        Err(StoreError::PinSpaceExhausted { .. })
    ));
    assert!(matches!(
        store
            .export_batch_csv(
                &CardBatch {
                    id: batch.id + 100,
                    ..batch.clone()
                },
                Vec::new()
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
});

const TARIFF_CSV: &str = "\
prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee
49,Germany,0.0125,0.0080,60,60,0
4915,Germany mobile,0.1500,0.0900,30,6,0.05
33,France,0.02,abc,60,60,0
44,UK,0.0200,0.0100,60
,Empty,0.01,0.01,60,60,0
49,Germany again,0.0130,0.0080,60,60,0
1,USA,0.0100000,0.005,60,60,0
7,Russia,0.05,0.03,60,0,0
";

fn report_lines(report: &ImportReport) -> Vec<String> {
    report.errors.iter().map(ToString::to_string).collect()
}

ledger_test!(tariff_import_reports_bad_rows, |store| {
    let tariff = store
        .create_tariff("retail", "EUR", r#"{"grace_s":3}"#, NOW)
        .await
        .unwrap();
    let expected_errors = [
        "line 4, buy_rate: not a decimal number: \"abc\"",
        "line 5, increment: missing (5 of 7 fields)",
        "line 6, prefix: empty",
        "line 7, prefix: duplicate prefix \"49\", first on line 2",
        "line 8, sell_rate: more than 6 fractional digits: \"0.0100000\"",
        "line 9, increment: 0 is outside 1..=86400",
    ];
    // Dry run: the same report, nothing written.
    let dry = store
        .import_tariff_csv(
            tariff.id,
            TARIFF_CSV.as_bytes(),
            ImportOptions {
                dry_run: true,
                ..ImportOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(report_lines(&dry), expected_errors);
    assert_eq!((dry.rows_read, dry.rows_valid, dry.rows_written), (8, 2, 0));
    assert_eq!(store.rate_count(tariff.id).await.unwrap(), 0);
    // Atomic: rolled back because of the bad rows.
    let atomic = store
        .import_tariff_csv(
            tariff.id,
            TARIFF_CSV.as_bytes(),
            ImportOptions {
                atomic: true,
                ..ImportOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(report_lines(&atomic), expected_errors);
    assert_eq!(atomic.rows_written, 0);
    assert_eq!(store.rate_count(tariff.id).await.unwrap(), 0);
    // Default: good rows imported.
    let report = store
        .import_tariff_csv(tariff.id, TARIFF_CSV.as_bytes(), ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(report_lines(&report), expected_errors);
    assert_eq!(report.rows_written, 2);
    let rates = store.rates(tariff.id).await.unwrap();
    assert_eq!(
        rates,
        vec![
            Rate {
                tariff_id: tariff.id,
                prefix: "49".into(),
                description: "Germany".into(),
                sell_rate_micros: 12_500,
                buy_rate_micros: 8_000,
                initial_block_s: 60,
                increment_s: 60,
                connection_fee_micros: 0,
                extras_json: "{}".into(),
            },
            Rate {
                tariff_id: tariff.id,
                prefix: "4915".into(),
                description: "Germany mobile".into(),
                sell_rate_micros: 150_000,
                buy_rate_micros: 90_000,
                initial_block_s: 30,
                increment_s: 6,
                connection_fee_micros: 50_000,
                extras_json: "{}".into(),
            },
        ]
    );
    // Longest prefix wins.
    let mobile = store
        .find_rate(tariff.id, &pin("+4915112345678"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mobile.prefix, "4915");
    let landline = store
        .find_rate(tariff.id, &pin("49301234"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(landline.prefix, "49");
    assert!(
        store
            .find_rate(tariff.id, &pin("331234"))
            .await
            .unwrap()
            .is_none()
    );
    // Re-importing updates in place.
    let update = "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee\n\
                  49,Germany,0.0111,0.0080,60,60,0\n";
    let report = store
        .import_tariff_csv(tariff.id, update.as_bytes(), ImportOptions::default())
        .await
        .unwrap();
    assert!(report.errors.is_empty());
    assert_eq!(store.rate_count(tariff.id).await.unwrap(), 2);
    assert_eq!(
        store.rates(tariff.id).await.unwrap()[0].sell_rate_micros,
        11_100
    );
    // Header problems are fatal; settings JSON is kept verbatim.
    let missing = store
        .import_tariff_csv(
            tariff.id,
            "prefix,description\n1,x\n".as_bytes(),
            ImportOptions::default(),
        )
        .await;
    assert!(
        matches!(missing, Err(StoreError::CsvHeader(_))),
        "{missing:?}"
    );
    assert_eq!(
        store.tariff(tariff.id).await.unwrap().settings_json,
        r#"{"grace_s":3}"#
    );
    assert_eq!(
        store.tariff_by_name("retail").await.unwrap().unwrap().id,
        tariff.id
    );
});

ledger_test!(tariff_import_handles_many_rows_in_batches, |store| {
    let tariff = store.create_tariff("big", "EUR", "{}", NOW).await.unwrap();
    let mut csv_text = String::from(
        "description,prefix,sell_rate,buy_rate,initial_block,increment,connection_fee\n",
    );
    for index in 0..5_000 {
        csv_text.push_str(&format!(
            "dest {index},{},0.{index:04},0.0001,60,60,0\n",
            100_000 + index
        ));
    }
    let report = store
        .import_tariff_csv(
            tariff.id,
            csv_text.as_bytes(),
            ImportOptions {
                batch_rows: 700,
                ..ImportOptions::default()
            },
        )
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors.first());
    assert_eq!(report.rows_written, 5_000);
    assert_eq!(store.rate_count(tariff.id).await.unwrap(), 5_000);
    let rate = store
        .find_rate(tariff.id, &pin("1042421"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rate.sell_rate_micros, 424_200);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_sqlite_write_does_not_keep_the_file_locked() {
    let database = common::TestDb::sqlite().await;
    let store = &database.store;
    let card = card_with(store, "565656", UNIT, 1).await;
    // A second process-like store on the same file, with a short busy timeout.
    let other = Store::open_with(
        &database.url,
        &StoreOptions {
            sqlite_busy_timeout: std::time::Duration::from_millis(1_500),
            ..common::test_options()
        },
    )
    .await
    .unwrap();
    for attempt in 0..3 {
        let refused = store
            .authorize(
                &format!("r{attempt}"),
                Payer::Card(card.id),
                NOW,
                hold(5 * UNIT),
            )
            .await;
        assert!(matches!(refused, Err(StoreError::Refused(_))));
        // The dropped transaction is rolled back promptly, so the other writer gets in.
        let account = other
            .create_account(&NewAccount::new("other", "EUR"), NOW)
            .await
            .unwrap();
        other.recharge(account.id, UNIT, None, NOW).await.unwrap();
    }
    // And this store still writes normally.
    store
        .recharge(card.account_id, UNIT, None, NOW)
        .await
        .unwrap();
    assert_eq!(store.balance(card.account_id).await.unwrap(), 2 * UNIT);
    other.close().await;
    database.finish().await;
}

/// 100 authorizations spread over 10 independently opened stores (separate pools and, on
/// SQLite, separate writer connections competing for the file lock like separate processes).
async fn separate_stores_admit_exactly_one(database: common::TestDb) {
    let card = card_with(&database.store, "787878", 10 * UNIT, 0).await;
    let mut stores = Vec::new();
    for _ in 0..10 {
        let options = StoreOptions {
            max_connections: 2,
            ..common::test_options()
        };
        stores.push(Store::open_with(&database.url, &options).await.unwrap());
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(100));
    let tasks: Vec<_> = (0..100)
        .map(|index| {
            let store = stores[index % stores.len()].clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .authorize(
                        &format!("s{index}"),
                        Payer::Card(card.id),
                        NOW,
                        hold(6 * UNIT),
                    )
                    .await
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => admitted += 1,
            Err(error) => assert!(matches!(error, StoreError::Refused(_)), "{error}"),
        }
    }
    assert_eq!(admitted, 1);
    for store in stores {
        store.close().await;
    }
    database.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn separate_stores_admit_exactly_one_on_sqlite() {
    separate_stores_admit_exactly_one(common::TestDb::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn separate_stores_admit_exactly_one_on_postgres() {
    separate_stores_admit_exactly_one(common::TestDb::postgres().await).await;
}

ledger_test!(a_keyed_recharge_posts_once, |store| {
    let account = store
        .create_account(&NewAccount::new("a", "USD"), NOW)
        .await
        .unwrap();
    let first = store
        .recharge_once(account.id, 5 * UNIT, "till-7-0042", NOW)
        .await
        .unwrap();
    assert_eq!(
        first,
        RechargeOutcome {
            balance_micros: 5 * UNIT,
            replayed: false
        }
    );
    store.refund(account.id, UNIT, None, NOW).await.unwrap();
    // The retry posts nothing and reports the balance as it is now.
    let again = store
        .recharge_once(account.id, 5 * UNIT, "till-7-0042", NOW)
        .await
        .unwrap();
    assert_eq!(
        again,
        RechargeOutcome {
            balance_micros: 6 * UNIT,
            replayed: true
        }
    );
    assert!(matches!(
        store
            .recharge_once(account.id, 7 * UNIT, "till-7-0042", NOW)
            .await,
        Err(StoreError::InvalidArgument(_))
    ));
    // Keys are per account: another account may use the same one.
    let other = store
        .create_account(&NewAccount::new("b", "USD"), NOW)
        .await
        .unwrap();
    let elsewhere = store
        .recharge_once(other.id, 5 * UNIT, "till-7-0042", NOW)
        .await
        .unwrap();
    assert!(!elsewhere.replayed);

    // Twenty racing repeats of a new key credit once.
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            let barrier = barrier.clone();
            let id = account.id;
            tokio::spawn(async move {
                barrier.wait().await;
                store.recharge_once(id, 2 * UNIT, "race", NOW).await
            })
        })
        .collect();
    let mut posted = 0;
    for task in tasks {
        // A loser of the race may see the unique index instead of the earlier row.
        if let Ok(outcome) = task.await.unwrap() {
            posted += usize::from(!outcome.replayed);
        }
    }
    assert_eq!(posted, 1);
    assert_eq!(store.balance(account.id).await.unwrap(), 8 * UNIT);
    let keyed = store
        .transactions(account.id)
        .await
        .unwrap()
        .iter()
        .filter(|entry| entry.reference.as_deref() == Some("race"))
        .count();
    assert_eq!(keyed, 1);
});

ledger_test!(
    a_card_pays_its_activation_fee_once_whatever_races,
    |store| {
        // A shared card (100 calls at once) whose first call is also its activation: 100 calls are
        // authorized and answered at once, each rated with the 0.39 activation included; the
        // settles race, one books the activation, the others are told to rate again without it.
        let mut card = NewCard::new(pin("390390"), "EUR", 1_000 * UNIT);
        card.concurrency_limit = 100;
        card.activation_fee_micros = 390_000;
        let card = store.create_card(&card, NOW).await.unwrap();
        let results = authorize_in_parallel(store, Payer::Card(card.id), 100, UNIT).await;
        assert!(results.iter().all(Result::is_ok));
        let barrier = Arc::new(tokio::sync::Barrier::new(100));
        let tasks: Vec<_> = (0..100)
            .map(|index| {
                let (store, barrier) = (store.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let call = format!("call-{index}");
                    let first_use = FirstUse {
                        card_id: card.id,
                        activation_fee_micros: 390_000,
                    };
                    match store
                        .settle_call(
                            &call,
                            500_000,
                            &[],
                            NOW,
                            SettleExtras {
                                first_use: Some(first_use),
                                ..SettleExtras::default()
                            },
                        )
                        .await
                    {
                        Err(StoreError::AlreadyActivated { .. }) => {
                            let plain = FirstUse {
                                activation_fee_micros: 0,
                                ..first_use
                            };
                            store
                                .settle_call(
                                    &call,
                                    110_000,
                                    &[],
                                    NOW,
                                    SettleExtras {
                                        first_use: Some(plain),
                                        ..SettleExtras::default()
                                    },
                                )
                                .await
                                .unwrap();
                            false
                        }
                        settled => {
                            settled.unwrap();
                            true
                        }
                    }
                })
            })
            .collect();
        let mut activated = 0;
        for task in tasks {
            activated += usize::from(task.await.unwrap());
        }
        assert_eq!(activated, 1, "exactly one settle booked the activation");
        let balance = store.balance(card.account_id).await.unwrap();
        assert_eq!(balance, 1_000 * UNIT - 390_000 - 100 * 110_000);
        let activations = store
            .transactions(card.account_id)
            .await
            .unwrap()
            .into_iter()
            .filter(|entry| entry.kind == TransactionKind::Activation)
            .count();
        assert_eq!(activations, 1);
        let used = store.card(card.id).await.unwrap();
        assert_eq!(used.first_used_at_ms, Some(NOW));
    }
);

/// An account's own rules (issue 20's destination lists beside issue 13's taxes) are kept as
/// given and read back in one probe, on both backends; an unknown account is an error.
async fn account_rules_round_trip(database: common::TestDb) {
    let store = &database.store;
    let card = card_with(store, "4242424242", 5 * UNIT, 0).await;
    let account = card.account_id;
    assert_eq!(
        store.account_rules(account).await.unwrap(),
        talktime_store::AccountRules::default()
    );
    let lists = r#"{"allowed":["52"],"denied":["52900"]}"#;
    store
        .set_account_destinations(account, Some(lists))
        .await
        .unwrap();
    store
        .set_account_taxes(account, Some(r#"{"name":"own","taxes":[]}"#))
        .await
        .unwrap();
    let rules = store.account_rules(account).await.unwrap();
    assert_eq!(rules.destinations_json.as_deref(), Some(lists));
    assert!(rules.taxes_json.is_some());
    store.set_account_destinations(account, None).await.unwrap();
    assert_eq!(
        store
            .account_rules(account)
            .await
            .unwrap()
            .destinations_json,
        None
    );
    assert!(
        store
            .set_account_destinations(999_999, Some(lists))
            .await
            .is_err()
    );
    database.finish().await;
}

#[tokio::test]
async fn account_rules_round_trip_on_sqlite() {
    account_rules_round_trip(common::TestDb::sqlite().await).await;
}

#[tokio::test]
async fn account_rules_round_trip_on_postgres() {
    account_rules_round_trip(common::TestDb::postgres().await).await;
}

/// Issue 18: the ledger file holds keyed hashes, never a PIN; the PINs still authenticate;
/// another key is refused; plain PINs of an older ledger are hashed at the next open.
#[tokio::test]
async fn pins_are_kept_as_keyed_hashes_and_the_key_must_match() {
    let database = common::TestDb::sqlite().await;
    let store = &database.store;
    let spec = CardBatchSpec {
        name: "hashed".into(),
        count: 50,
        pin_length: 12,
        value_micros: UNIT,
        currency: "EUR".into(),
        tariff_id: None,
        kind: CardKind::Refillable,
        expiry: ExpiryRule::default(),
        owner_account_id: None,
        activation_fee_micros: 0,
        caller_id_min_balance_micros: 0,
        concurrency_limit: 1,
        reseller_id: None,
    };
    let batch = store.generate_cards(&spec, NOW).await.unwrap();
    let single = card_with(store, "424242424242", UNIT, 1).await;
    store.close().await;
    let mut file_bytes = Vec::new();
    for entry in std::fs::read_dir(&database.url).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().contains(SQLITE_FILE_NAME) {
            file_bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(file_bytes.len() > 10_000, "the ledger file was read");
    let mut pins: Vec<String> = batch.pins.iter().map(|p| p.expose().clone()).collect();
    pins.push("424242424242".into());
    for pin_text in &pins {
        let found = file_bytes
            .windows(pin_text.len())
            .any(|window| window == pin_text.as_bytes());
        assert!(!found, "a PIN is readable in the ledger file");
    }
    let store = Store::open_with(&database.url, &common::test_options())
        .await
        .unwrap();
    for (pin_text, id) in pins.iter().zip(batch.card_ids.iter().chain([&single.id])) {
        let card = store.card_by_pin(&pin(pin_text)).await.unwrap().unwrap();
        assert_eq!(card.id, *id);
    }
    // Another key: refused with a clear error, not a ledger where every PIN fails.
    let wrong = StoreOptions {
        pin_key: Some(PinKey::from_hex(&"6b".repeat(32)).unwrap()),
        ..common::test_options()
    };
    let refused = Store::open_with(&database.url, &wrong).await.unwrap_err();
    assert!(matches!(refused, StoreError::PinKey(_)), "{refused}");
    // An older ledger's plain PIN is hashed at the next open.
    store.close().await;
    let file = std::path::Path::new(&database.url).join(SQLITE_FILE_NAME);
    let raw = sqlx::sqlite::SqliteConnectOptions::new().filename(&file);
    let mut connection = sqlx::ConnectOptions::connect(&raw).await.unwrap();
    sqlx::query("UPDATE cards SET pin_hash = '9090909090' WHERE id = $1")
        .bind(single.id)
        .execute(&mut connection)
        .await
        .unwrap();
    sqlx::query("DELETE FROM ledger_meta")
        .execute(&mut connection)
        .await
        .unwrap();
    sqlx::Connection::close(connection).await.unwrap();
    let store = Store::open_with(&database.url, &common::test_options())
        .await
        .unwrap();
    let upgraded = store
        .card_by_pin(&pin("9090909090"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(upgraded.id, single.id);
    store.close().await;
    database.finish().await;
}

// Issue 18: a call that takes a balance under a threshold queues exactly one mail in its own
// transaction; staying under queues none; a deeper crossing queues another.
ledger_test!(low_balance_mail_is_queued_once_per_crossing, |store| {
    let card = card_with(store, "313131", 3 * UNIT / 2, 0).await;
    let settings = NotifySettings {
        email: Some(pin("owner@example.test")),
        below_micros: vec![UNIT, UNIT / 2],
        language: Some("es".into()),
    };
    store
        .set_notify_settings(card.account_id, &settings)
        .await
        .unwrap();
    assert_eq!(
        store.notify_settings(card.account_id).await.unwrap(),
        settings
    );
    let charge = |id: &'static str, amount: i64| {
        let store = store.clone();
        async move {
            store
                .authorize(id, Payer::Card(card.id), NOW, hold(amount))
                .await
                .unwrap();
            store.settle(id, amount, &[], NOW + 1).await.unwrap();
        }
    };
    charge("n-1", 6 * UNIT / 10).await; // 1.50 -> 0.90: under 1.00
    let first = store
        .claim_notifications(NOW + 10, 60_000, 10)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].kind, NotificationKind::LowBalance);
    assert_eq!(first[0].amount_micros, 9 * UNIT / 10);
    assert_eq!(first[0].threshold_micros, UNIT);
    assert_eq!(first[0].language, "es");
    assert_eq!(first[0].currency, "EUR");
    // Claimed: not handed out again while its lease runs; sent: never again.
    assert!(
        store
            .claim_notifications(NOW + 20, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .finish_notification(first[0].id, Ok(()), NOW + 30, 0)
        .await
        .unwrap();
    charge("n-2", UNIT / 10).await; // 0.90 -> 0.80: no new crossing
    assert_eq!(store.unsent_notifications().await.unwrap(), 0);
    charge("n-3", UNIT / 2).await; // 0.80 -> 0.30: under 0.50
    let second = store
        .claim_notifications(NOW + 40, 60_000, 10)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].threshold_micros, UNIT / 2);
    // A failed attempt is due again at its retry time, not before.
    store
        .finish_notification(
            second[0].id,
            Err("connection refused"),
            NOW + 50,
            NOW + 5_000,
        )
        .await
        .unwrap();
    assert!(
        store
            .claim_notifications(NOW + 60, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let retried = store
        .claim_notifications(NOW + 5_000, 60_000, 10)
        .await
        .unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].attempts, 1);
    assert!(store.check_balances().await.unwrap().is_empty());
});

// A CSV saved with CRLF line ends (Excel, a browser's textarea) reports the same line numbers.
ledger_test!(crlf_tariff_rows_are_reported_at_their_lines, |store| {
    let tariff = store.create_tariff("crlf", "EUR", "{}", NOW).await.unwrap();
    let csv = "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee\r\n\
               44,UK,0.05,0.02,60,60,0\r\nxx,Bad,0.1,0.1,60,60,0\r\n";
    let report = store
        .import_tariff_csv(tariff.id, csv.as_bytes(), ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(report.rows_written, 1);
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].line, 3, "{:?}", report.errors);
});

/// Carriers and dial plans as stored documents: seeded once (a second seed, another node's,
/// writes nothing), replaced in place, removed, each change a new version; on both backends.
async fn routing_documents_are_seeded_once_and_versioned(database: common::TestDb) {
    use talktime_store::{RoutingDocument, RoutingKind};
    let store = &database.store;
    let document = |kind, name: &str, text: &str| RoutingDocument {
        kind,
        name: name.to_owned(),
        document: text.to_owned(),
    };
    assert_eq!(store.routing_version().await.unwrap(), None);
    assert!(store.routing_snapshot().await.unwrap().is_none());
    let seed = [
        document(RoutingKind::Carrier, "a", "{\"n\":1}"),
        document(RoutingKind::Carrier, "b", "{\"n\":2}"),
        document(RoutingKind::DialPlan, "default", "{}"),
    ];
    assert!(store.seed_routing(&seed, 1).await.unwrap());
    assert!(!store.seed_routing(&seed[..1], 2).await.unwrap());
    let snapshot = store.routing_snapshot().await.unwrap().unwrap();
    assert_eq!(snapshot.version, 1);
    assert_eq!(snapshot.documents, seed);

    let replaced = document(RoutingKind::Carrier, "a", "{\"n\":3}");
    assert_eq!(store.put_routing_document(&replaced, 3).await.unwrap(), 2);
    let added = document(RoutingKind::Carrier, "c", "{}");
    assert_eq!(store.put_routing_document(&added, 4).await.unwrap(), 3);
    let snapshot = store.routing_snapshot().await.unwrap().unwrap();
    let carriers: Vec<&str> = snapshot
        .documents
        .iter()
        .filter(|d| d.kind == RoutingKind::Carrier)
        .map(|d| d.document.as_str())
        .collect();
    assert_eq!(
        carriers,
        ["{\"n\":3}", "{\"n\":2}", "{}"],
        "a keeps its place"
    );

    assert_eq!(
        store
            .delete_routing_document(RoutingKind::Carrier, "b")
            .await
            .unwrap(),
        Some(4)
    );
    assert_eq!(
        store
            .delete_routing_document(RoutingKind::Carrier, "b")
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.replace_routing(&seed[2..], 5).await.unwrap(), 5);
    let snapshot = store.routing_snapshot().await.unwrap().unwrap();
    assert_eq!(snapshot.documents, seed[2..]);
    database.finish().await;
}

#[tokio::test]
async fn routing_documents_on_sqlite() {
    routing_documents_are_seeded_once_and_versioned(common::TestDb::sqlite().await).await;
}

#[tokio::test]
async fn routing_documents_on_postgres() {
    routing_documents_are_seeded_once_and_versioned(common::TestDb::postgres().await).await;
}

// A callback's called leg is held beside its caller leg (issue 21): the caller leg's hold counts
// as free credit, it is not a second call for a limit of one, and both holds are written in one
// transaction; asking for more than both can have writes nothing.
ledger_test!(
    a_hold_beside_the_caller_leg_resizes_it_in_the_same_transaction,
    |store| {
        let mut single = NewAccount::new("callback", "USD");
        single.concurrency_limit = 1;
        let account = store.create_account(&single, NOW).await.unwrap();
        store
            .recharge(account.id, 10 * UNIT, None, NOW)
            .await
            .unwrap();
        let payer = Payer::Account(account.id);
        store
            .authorize("cb#0", payer, NOW, hold(10 * UNIT))
            .await
            .unwrap();
        let refused = store
            .authorize_beside("cb#1", "cb#0", payer, NOW, |available, held| {
                assert_eq!((available.available_micros, held), (10 * UNIT, 10 * UNIT));
                Ok((Decision::new(6 * UNIT, 1), 5 * UNIT))
            })
            .await;
        assert!(refused.is_err(), "11 of 10 held: {refused:?}");
        let held = |call: &'static str| {
            let store = store.clone();
            async move {
                store
                    .reservation(call)
                    .await
                    .unwrap()
                    .unwrap()
                    .amount_micros
            }
        };
        assert_eq!(held("cb#0").await, 10 * UNIT, "nothing written");
        let (reservation, caller_leg) = store
            .authorize_beside("cb#1", "cb#0", payer, NOW, |_, _| {
                Ok((Decision::new(6 * UNIT, 1), 4 * UNIT))
            })
            .await
            .unwrap();
        assert_eq!(
            (reservation.amount_micros, caller_leg),
            (6 * UNIT, 4 * UNIT)
        );
        assert_eq!(held("cb#0").await, 4 * UNIT);
        // Another call on the account is still refused by its limit of one.
        let other = store.authorize("other", payer, NOW, hold(UNIT)).await;
        assert!(other.is_err(), "{other:?}");
    }
);

ledger_test!(
    a_settle_whose_last_statement_fails_leaves_nothing_and_the_next_settles,
    |store| {
        // Pipelined on PostgreSQL, a settle's CDR goes out with its COMMIT, after the balance
        // update and the ledger line: its error must still undo both, and the connection it
        // used must serve the next call cleanly. (SQLite runs the same statements one by one.)
        if store.kind() == talktime_store::BackendKind::Postgres {
            assert!(store.pipelines_calls(), "a call's statements are pipelined");
        }
        let card = card_with(store, "515151", 10 * UNIT, 1).await;
        store
            .authorize("late", Payer::Card(card.id), NOW, hold(5 * UNIT))
            .await
            .unwrap();
        let lines_before = store.transactions(card.account_id).await.unwrap().len();
        let mut broken = sample_cdr("late", 1, 2 * UNIT);
        broken.card_id = Some(999_999); // no such card: a foreign key fails
        let failed = store.settle("late", 2 * UNIT, &[broken], NOW + 1).await;
        assert!(failed.is_err(), "{failed:?}");
        assert_eq!(store.balance(card.account_id).await.unwrap(), 10 * UNIT);
        let lines_after = store.transactions(card.account_id).await.unwrap().len();
        assert_eq!(
            lines_after, lines_before,
            "no ledger line of the failed settle"
        );
        assert_eq!(store.cdrs_for_call("late").await.unwrap().len(), 0);
        assert_eq!(
            store
                .open_reservations(card.account_id)
                .await
                .unwrap()
                .len(),
            1
        );
        for _ in 0..3 {
            // More uses than the pool has connections would show a connection left broken.
            let good = sample_cdr("late", 1, 2 * UNIT);
            let settled = store.settle("late", 2 * UNIT, &[good], NOW + 2).await;
            assert!(settled.is_ok(), "{settled:?}");
        }
        assert_eq!(store.balance(card.account_id).await.unwrap(), 8 * UNIT);
        assert_eq!(store.cdrs_for_call("late").await.unwrap().len(), 1);
        assert!(store.check_balances().await.unwrap().is_empty());
    }
);

ledger_test!(
    a_refused_hold_leaves_no_lock_behind_for_the_next_calls,
    |store| {
        // A hold refused after its account was locked ends its transaction; a connection
        // handed back with it still open would keep the account locked from every other
        // connection (pipelined PostgreSQL rolls it back before the connection is reused).
        let card = card_with(store, "525252", 10 * UNIT, 4).await;
        for attempt in 0..3 {
            let refused = store
                .authorize(
                    &format!("big-{attempt}"),
                    Payer::Card(card.id),
                    NOW,
                    hold(50 * UNIT),
                )
                .await;
            assert!(refused.is_err(), "{refused:?}");
        }
        // A recharge runs on another connection (on PostgreSQL, of sqlx's pool) and
        // updates the account's row.
        let recharge = store.recharge(card.account_id, UNIT, None, NOW);
        tokio::time::timeout(std::time::Duration::from_secs(10), recharge)
            .await
            .expect("a recharge after refusals is not blocked by a lock left behind")
            .unwrap();
        let results = authorize_in_parallel(store, Payer::Card(card.id), 4, UNIT).await;
        assert_eq!(results.iter().filter(|result| result.is_ok()).count(), 4);
    }
);
