//! Card payments on both backends (issue 22): a payment credits its account once, in the
//! transaction that marks it paid; again, it credits nothing; an amount or currency that is
//! not the payment's credits nothing and fails it; an unknown payment is reported as such.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use talktime_store::{NewAccount, PaymentCompletion, TransactionKind};

const NOW: i64 = 1_780_000_000_000;
const UNIT: i64 = 1_000_000;

ledger_test!(a_payment_credits_once_and_only_its_own_amount, |store| {
    let account = store
        .create_account(&NewAccount::new("payer", "USD"), NOW)
        .await
        .unwrap()
        .id;
    store
        .start_payment("pay_1", account, 10 * UNIT, NOW)
        .await
        .unwrap();
    store.name_payment_session("pay_1", "cs_1").await.unwrap();
    let first = store
        .complete_payment("pay_1", 10 * UNIT, "usd", NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        first,
        PaymentCompletion::Credited {
            account_id: account,
            amount_micros: 10 * UNIT,
            balance_micros: 10 * UNIT
        }
    );
    for _ in 0..2 {
        assert_eq!(
            store
                .complete_payment("pay_1", 10 * UNIT, "USD", NOW + 2)
                .await
                .unwrap(),
            PaymentCompletion::AlreadyPaid
        );
    }
    assert_eq!(
        store
            .complete_payment("pay_9", UNIT, "USD", NOW)
            .await
            .unwrap(),
        PaymentCompletion::Unknown
    );
    store
        .start_payment("pay_2", account, 5 * UNIT, NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .complete_payment("pay_2", 50 * UNIT, "USD", NOW)
            .await
            .unwrap(),
        PaymentCompletion::Mismatch
    );
    assert_eq!(
        store
            .complete_payment("pay_2", 5 * UNIT, "USD", NOW)
            .await
            .unwrap(),
        PaymentCompletion::AlreadyPaid,
        "a failed payment stays failed"
    );
    let row = store.payment("pay_1").await.unwrap().unwrap();
    assert_eq!(
        (row.state.as_str(), row.provider_session.as_deref()),
        ("paid", Some("cs_1"))
    );
    assert_eq!(
        store.payment("pay_2").await.unwrap().unwrap().state,
        "failed"
    );
    assert_eq!(store.balance(account).await.unwrap(), 10 * UNIT);
    let recharges = store
        .transactions(account)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.kind == TransactionKind::Recharge)
        .count();
    assert_eq!(recharges, 1);
});
