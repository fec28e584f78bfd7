//! Vouchers, PIN changes, speed dials and remembered languages on both backends (issue 21).

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use std::sync::Arc;

use talktime_pii::Pii;
use talktime_store::{
    CardKind, NewCard, PinChange, Redemption, Store, VoucherBatch, VoucherBatchSpec,
};

const NOW: i64 = 1_780_000_000_000;
const UNIT: i64 = 1_000_000;

fn text(value: &str) -> Pii<String> {
    Pii::new(value.to_owned())
}

async fn vouchers(store: &Store, count: u32, value: i64, currency: &str) -> VoucherBatch {
    let spec = VoucherBatchSpec {
        name: "shop vouchers".into(),
        count,
        code_length: 12,
        value_micros: value,
        currency: currency.into(),
        expires_at_ms: Some(NOW + 86_400_000),
        design: None,
    };
    store.generate_vouchers(&spec, NOW).await.unwrap()
}

async fn card(store: &Store, pin: &str, kind: CardKind) -> talktime_store::Card {
    let mut new_card = NewCard::new(text(pin), "USD", 2 * UNIT);
    new_card.kind = kind;
    store.create_card(&new_card, NOW).await.unwrap()
}

ledger_test!(a_voucher_credits_once_and_is_then_used, |store| {
    let batch = vouchers(store, 3, 10 * UNIT, "usd").await;
    assert_eq!(batch.codes.len(), 3);
    assert!(batch.codes.iter().all(|code| code.expose().len() == 12));
    let card = card(store, "4455667788", CardKind::Refillable).await;
    let code = &batch.codes[1];
    let first = store
        .redeem_voucher(card.account_id, code, Some("call-1"), NOW + 1)
        .await
        .unwrap();
    assert_eq!(
        first,
        Redemption::Credited {
            voucher_id: batch.voucher_ids[1],
            amount_micros: 10 * UNIT,
            balance_micros: 12 * UNIT,
        }
    );
    let again = store
        .redeem_voucher(card.account_id, code, Some("call-2"), NOW + 2)
        .await
        .unwrap();
    assert_eq!(again, Redemption::AlreadyUsed);
    assert_eq!(store.balance(card.account_id).await.unwrap(), 12 * UNIT);
    let unknown = store
        .redeem_voucher(card.account_id, &text("000000000000"), None, NOW)
        .await
        .unwrap();
    assert_eq!(unknown, Redemption::Unknown);
    let rows = store.vouchers_of_batch(batch.id).await.unwrap();
    assert_eq!(rows[1].used_by_account_id, Some(card.account_id));
    assert_eq!(rows[1].used_call_id.as_deref(), Some("call-1"));
    assert_eq!(rows[0].used_at_ms, None);
    let entries = store.transactions(card.account_id).await.unwrap();
    let voucher_lines: Vec<_> = entries
        .iter()
        .filter(|entry| {
            entry
                .reference
                .as_deref()
                .is_some_and(|reference| reference.starts_with("voucher "))
        })
        .collect();
    assert_eq!(voucher_lines.len(), 1);
    assert!(store.check_balances().await.unwrap().is_empty());
});

ledger_test!(
    two_calls_entering_one_voucher_at_once_credit_it_once,
    |store| {
        let batch = vouchers(store, 1, 5 * UNIT, "USD").await;
        let first = card(store, "1122334455", CardKind::Refillable).await;
        let second = card(store, "5544332211", CardKind::Refillable).await;
        let code = batch.codes[0].clone();
        let barrier = Arc::new(tokio::sync::Barrier::new(20));
        let tasks: Vec<_> = (0..20)
            .map(|index| {
                let store = store.clone();
                let barrier = barrier.clone();
                let code = code.clone();
                let account = if index % 2 == 0 {
                    first.account_id
                } else {
                    second.account_id
                };
                tokio::spawn(async move {
                    barrier.wait().await;
                    let call = format!("call-{index}");
                    store
                        .redeem_voucher(account, &code, Some(&call), NOW)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut credited = 0;
        for task in tasks {
            match task.await.unwrap() {
                Redemption::Credited { .. } => credited += 1,
                other => assert_eq!(other, Redemption::AlreadyUsed),
            }
        }
        assert_eq!(credited, 1);
        let total = store.balance(first.account_id).await.unwrap()
            + store.balance(second.account_id).await.unwrap();
        assert_eq!(total, 4 * UNIT + 5 * UNIT);
        assert!(store.check_balances().await.unwrap().is_empty());
    }
);

ledger_test!(
    vouchers_refuse_other_currencies_expiry_and_disposable_cards,
    |store| {
        let euros = vouchers(store, 1, UNIT, "EUR").await;
        let dollars = vouchers(store, 2, UNIT, "USD").await;
        let refillable = card(store, "2233445566", CardKind::Refillable).await;
        let disposable = card(store, "6655443322", CardKind::Disposable).await;
        let wrong_currency = store
            .redeem_voucher(refillable.account_id, &euros.codes[0], None, NOW)
            .await
            .unwrap();
        assert_eq!(wrong_currency, Redemption::WrongCurrency);
        let not_refillable = store
            .redeem_voucher(disposable.account_id, &dollars.codes[0], None, NOW)
            .await
            .unwrap();
        assert_eq!(not_refillable, Redemption::NotRefillable);
        let late = store
            .redeem_voucher(
                refillable.account_id,
                &dollars.codes[0],
                None,
                NOW + 86_400_000,
            )
            .await
            .unwrap();
        assert_eq!(late, Redemption::Expired);
        assert!(store.disable_voucher(dollars.voucher_ids[1]).await.unwrap());
        let disabled = store
            .redeem_voucher(refillable.account_id, &dollars.codes[1], None, NOW)
            .await
            .unwrap();
        assert_eq!(disabled, Redemption::Expired);
        // Nothing was consumed by the refusals: the first dollar voucher still works.
        let good = store
            .redeem_voucher(refillable.account_id, &dollars.codes[0], None, NOW)
            .await
            .unwrap();
        assert!(matches!(good, Redemption::Credited { .. }), "{good:?}");
        assert_eq!(
            store.balance(disposable.account_id).await.unwrap(),
            2 * UNIT
        );
    }
);

ledger_test!(
    a_batch_exports_its_codes_and_short_codes_are_refused,
    |store| {
        let batch = vouchers(store, 2, UNIT, "USD").await;
        let mut csv = Vec::new();
        batch.write_csv(&mut csv).unwrap();
        let csv = String::from_utf8(csv).unwrap();
        assert!(csv.starts_with("voucher_id,code,value,currency,expires_at_ms\n"));
        assert!(csv.contains(batch.codes[0].expose()));
        let rows = store.vouchers_of_batch(batch.id).await.unwrap();
        assert_eq!(rows.len(), 2);
        let bad_length = VoucherBatchSpec {
            name: "short".into(),
            count: 1,
            code_length: 6,
            value_micros: UNIT,
            currency: "USD".into(),
            expires_at_ms: None,
            design: None,
        };
        assert!(store.generate_vouchers(&bad_length, NOW).await.is_err());
    }
);

ledger_test!(a_refillable_card_changes_its_pin, |store| {
    let mine = card(store, "1357913579", CardKind::Refillable).await;
    let other = card(store, "2468024680", CardKind::Refillable).await;
    let throwaway = card(store, "9753197531", CardKind::Disposable).await;
    assert_eq!(
        store
            .change_pin(mine.id, &text("2468024680"))
            .await
            .unwrap(),
        PinChange::Taken
    );
    assert_eq!(
        store
            .change_pin(throwaway.id, &text("1111122222"))
            .await
            .unwrap(),
        PinChange::NotRefillable
    );
    assert_eq!(
        store
            .change_pin(mine.id, &text("8642086420"))
            .await
            .unwrap(),
        PinChange::Changed
    );
    let found = store.card_by_pin(&text("8642086420")).await.unwrap();
    assert_eq!(found.map(|card| card.id), Some(mine.id));
    assert!(
        store
            .card_by_pin(&text("1357913579"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .card_by_pin(&text("2468024680"))
            .await
            .unwrap()
            .map(|card| card.id),
        Some(other.id)
    );
});

ledger_test!(speed_dials_and_the_last_number, |store| {
    let mine = card(store, "3141592653", CardKind::Refillable).await;
    store
        .set_speed_dial(mine.account_id, 3, &text("+442071234567"), NOW)
        .await
        .unwrap();
    store
        .set_speed_dial(mine.account_id, 3, &text("+33123456789"), NOW + 1)
        .await
        .unwrap();
    assert!(
        store
            .set_speed_dial(mine.account_id, 0, &text("+1"), NOW)
            .await
            .is_err()
    );
    let number = store.stored_number(mine.account_id, 3).await.unwrap();
    assert_eq!(
        number.as_ref().map(|n| n.expose().as_str()),
        Some("+33123456789")
    );
    assert_eq!(store.stored_number(mine.account_id, 4).await.unwrap(), None);
    assert_eq!(store.stored_number(mine.account_id, 0).await.unwrap(), None);
    let dials = store.speed_dials(mine.account_id).await.unwrap();
    assert_eq!(dials.len(), 1);
    assert!(store.remove_speed_dial(mine.account_id, 3).await.unwrap());
    assert!(!store.remove_speed_dial(mine.account_id, 3).await.unwrap());
});

ledger_test!(
    a_language_is_remembered_per_account_and_caller_id,
    |store| {
        let mine = card(store, "2718281828", CardKind::Refillable).await;
        let caller = text("15551230000");
        assert_eq!(
            store
                .remembered_language(None, Some(&caller))
                .await
                .unwrap(),
            None
        );
        store
            .remember_language(Some(mine.account_id), Some(&caller), "es", NOW)
            .await
            .unwrap();
        assert_eq!(
            store
                .remembered_language(Some(mine.account_id), None)
                .await
                .unwrap()
                .as_deref(),
            Some("es")
        );
        store
            .remember_language(None, Some(&caller), "en", NOW + 1)
            .await
            .unwrap();
        assert_eq!(
            store
                .remembered_language(None, Some(&caller))
                .await
                .unwrap()
                .as_deref(),
            Some("en")
        );
        // The account's own choice comes first.
        assert_eq!(
            store
                .remembered_language(Some(mine.account_id), Some(&caller))
                .await
                .unwrap()
                .as_deref(),
            Some("es")
        );
    }
);
