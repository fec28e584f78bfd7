//! Promotion coupons on both backends (issue 22): the bonus is exact and a ledger line of its
//! own; a coupon past its limits, its dates or in another currency changes nothing (the
//! voucher stays unused); a used voucher with a good coupon gives no bonus.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use talktime_pii::Pii;
use talktime_store::{
    CouponRecharge, CouponRefusal, NewAccount, NewCoupon, Redemption, Store, TransactionKind,
    VoucherBatchSpec,
};

const NOW: i64 = 1_780_000_000_000;
const UNIT: i64 = 1_000_000;

async fn codes(store: &Store, count: u32, value: i64) -> Vec<Pii<String>> {
    let spec = VoucherBatchSpec {
        name: "shop".into(),
        count,
        code_length: 12,
        value_micros: value,
        currency: "USD".into(),
        expires_at_ms: None,
        design: None,
    };
    store.generate_vouchers(&spec, NOW).await.unwrap().codes
}

fn coupon(code: &str, percent_bp: i64, amount_micros: i64) -> NewCoupon {
    NewCoupon {
        code: code.into(),
        percent_bp,
        amount_micros,
        currency: "USD".into(),
        valid_from_ms: None,
        valid_until_ms: None,
        max_uses: 0,
        max_uses_per_account: 1,
    }
}

async fn account(store: &Store, name: &str) -> i64 {
    store
        .create_account(&NewAccount::new(name, "USD"), NOW)
        .await
        .unwrap()
        .id
}

ledger_test!(a_coupon_adds_its_bonus_once_within_its_limits, |store| {
    let first = account(store, "first").await;
    let second = account(store, "second").await;
    let third = account(store, "third").await;
    let vouchers = codes(store, 6, 5 * UNIT).await;
    let mut spring = coupon("spring10", 1_000, 0);
    spring.max_uses = 2;
    store.create_coupon(&spring, NOW).await.unwrap();
    // The same code twice (any case) is refused.
    assert!(
        store
            .create_coupon(&coupon("SPRING10", 500, 0), NOW)
            .await
            .is_err()
    );
    // A share and an amount at once, or neither, is not a coupon.
    assert!(
        store
            .create_coupon(&coupon("BOTH", 500, UNIT), NOW)
            .await
            .is_err()
    );

    let credited = store
        .redeem_voucher_with_coupon(first, &vouchers[0], "Spring10", NOW)
        .await
        .unwrap();
    assert_eq!(
        credited,
        CouponRecharge::Credited {
            voucher_id: match credited {
                CouponRecharge::Credited { voucher_id, .. } => voucher_id,
                _ => 0,
            },
            amount_micros: 5 * UNIT,
            bonus_micros: UNIT / 2,
            balance_micros: 5 * UNIT + UNIT / 2,
        }
    );
    // The last line first, and no more than asked for.
    let recent = store.recent_transactions(first, 1).await.unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].kind, TransactionKind::Promotion);
    assert_eq!(recent[0].balance_after_micros, 5 * UNIT + UNIT / 2);
    let lines = store.transactions(first).await.unwrap();
    let kinds: Vec<_> = lines
        .iter()
        .map(|line| (line.kind, line.amount_micros))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (TransactionKind::Recharge, 5 * UNIT),
            (TransactionKind::Promotion, UNIT / 2)
        ]
    );

    // Once per account: refused, and the second voucher stays unused.
    assert_eq!(
        store
            .redeem_voucher_with_coupon(first, &vouchers[1], "SPRING10", NOW)
            .await
            .unwrap(),
        CouponRecharge::Coupon(CouponRefusal::UsedByAccount)
    );
    assert_eq!(
        store.account(first).await.unwrap().balance_micros,
        5 * UNIT + UNIT / 2
    );
    // Another account takes the second and last use with that very voucher.
    assert!(matches!(
        store
            .redeem_voucher_with_coupon(second, &vouchers[1], "SPRING10", NOW)
            .await
            .unwrap(),
        CouponRecharge::Credited {
            bonus_micros: 500_000,
            ..
        }
    ));
    // Past its uses in all.
    assert_eq!(
        store
            .redeem_voucher_with_coupon(third, &vouchers[2], "SPRING10", NOW)
            .await
            .unwrap(),
        CouponRecharge::Coupon(CouponRefusal::UsedUp)
    );
    // A used voucher with a good coupon: no bonus, the coupon's use not taken.
    store
        .create_coupon(&coupon("ONEDOLLAR", 0, UNIT), NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .redeem_voucher_with_coupon(third, &vouchers[0], "ONEDOLLAR", NOW)
            .await
            .unwrap(),
        CouponRecharge::Voucher(Redemption::AlreadyUsed)
    );
    assert!(matches!(
        store
            .redeem_voucher_with_coupon(third, &vouchers[2], "onedollar", NOW)
            .await
            .unwrap(),
        CouponRecharge::Credited {
            bonus_micros: 1_000_000,
            balance_micros: 6_000_000,
            ..
        }
    ));

    // Dates, currency, unknown codes: refused, nothing changed.
    let mut later = coupon("LATER", 1_000, 0);
    later.valid_from_ms = Some(NOW + 1);
    store.create_coupon(&later, NOW).await.unwrap();
    let mut over = coupon("OVER", 1_000, 0);
    over.valid_until_ms = Some(NOW);
    store.create_coupon(&over, NOW).await.unwrap();
    let mut euros = coupon("EUROS", 1_000, 0);
    euros.currency = "EUR".into();
    store.create_coupon(&euros, NOW).await.unwrap();
    for (code, refusal) in [
        ("LATER", CouponRefusal::NotYetValid),
        ("OVER", CouponRefusal::Expired),
        ("EUROS", CouponRefusal::WrongCurrency),
        ("NOPE", CouponRefusal::Unknown),
    ] {
        assert_eq!(
            store
                .redeem_voucher_with_coupon(third, &vouchers[3], code, NOW)
                .await
                .unwrap(),
            CouponRecharge::Coupon(refusal),
            "{code}"
        );
    }
    assert_eq!(store.account(third).await.unwrap().balance_micros, 6 * UNIT);
    // The voucher the refused coupons came with is still good.
    assert!(matches!(
        store
            .redeem_voucher(third, &vouchers[3], None, NOW)
            .await
            .unwrap(),
        Redemption::Credited { .. }
    ));
    let listed = store.coupons().await.unwrap();
    let spring = listed.iter().find(|row| row.code == "SPRING10").unwrap();
    assert_eq!(spring.uses, 2);
});
