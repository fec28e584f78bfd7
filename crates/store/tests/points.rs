//! Bonus points and referrals over a scripted month, on both backends (issue 22): three
//! customers call every few days (a rule for everyone, one for a reseller's customers, one
//! for a tariff, which wins over the reseller's), a newcomer recharges twice; the points are
//! exactly what the month's spend earns at each rule (fractions carried, never rounded per
//! call), a second sweep awards nothing more, redemptions credit once per key, and the
//! referral pays both sides once, at the first paid recharge.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use talktime_pii::Pii;
use talktime_store::{
    Available, DEFAULT_MAX_RESELLER_DEPTH, Decision, MinutesRedemption, NewAccount, NewReseller,
    POINTS_SETTLE_MARGIN_MS, Payer, PlanRow, PointsRedemption, PointsScope, ReferralRewards,
    Refusal, SettleExtras, SignUp, SignUpOutcome, Store, TransactionKind, VoucherBatchSpec,
};

const MONTH_START: i64 = 1_780_272_000_000;
const DAY: i64 = 86_400_000;
const UNIT: i64 = 1_000_000;

/// Holds a unit on the customer and on each reseller level above it.
fn hold(available: &Available) -> Result<Decision, Refusal> {
    let mut decision = Decision::new(UNIT, 60_000);
    decision.level_holds = vec![0; available.levels.len()];
    Ok(decision)
}

async fn call(store: &Store, account: i64, name: &str, cost: i64, at: i64) {
    store
        .authorize(name, Payer::Account(account), at, hold)
        .await
        .unwrap();
    store.settle(name, cost, &[], at + 30_000).await.unwrap();
}

async fn sign_up(store: &Store, email: &str, referral: Option<&str>, own: &str) -> i64 {
    let email = Pii::new(email.to_owned());
    let outcome = store
        .sign_up(
            &SignUp {
                name: "Customer",
                email: &email,
                password_hash: "$argon2id$stand-in",
                currency: "USD",
                reseller_id: None,
                referred_by_code: referral,
                own_referral_code: own,
            },
            MONTH_START,
        )
        .await
        .unwrap();
    match outcome {
        SignUpOutcome::Created { account_id } => account_id,
        other => panic!("{other:?}"),
    }
}

fn kind_total(entries: &[talktime_store::LedgerEntry], kind: TransactionKind) -> Vec<i64> {
    entries
        .iter()
        .filter(|entry| entry.kind == kind)
        .map(|entry| entry.amount_micros)
        .collect()
}

ledger_test!(
    a_month_of_calls_earns_exact_points_and_one_referral,
    |store| {
        store
            .set_points_rule(PointsScope::Everyone, 10)
            .await
            .unwrap();
        store
            .set_referral_rewards(&ReferralRewards {
                currency: "USD".into(),
                referrer_micros: 2 * UNIT,
                newcomer_micros: UNIT,
            })
            .await
            .unwrap();
        let shop = store
            .add_reseller(
                &NewReseller {
                    name: "shop".into(),
                    parent_id: None,
                    currency: "USD".into(),
                    tariff_id: None,
                    credit_limit_micros: 0,
                    concurrency_limit: 0,
                    max_depth: DEFAULT_MAX_RESELLER_DEPTH,
                    sell_tariff_id: None,
                    min_margin_percent: 0,
                },
                MONTH_START,
            )
            .await
            .unwrap();
        store
            .set_points_rule(PointsScope::Reseller(shop.id), 25)
            .await
            .unwrap();
        let premium = store
            .create_tariff("premium", "USD", "{}", MONTH_START)
            .await
            .unwrap();
        store
            .set_points_rule(PointsScope::Tariff(premium.id), 3)
            .await
            .unwrap();

        // Ana (everyone's rule) referred Bo; Bo and Cy are the shop's; Cy is on the premium tariff.
        let ana = sign_up(store, "ana@example.com", None, "ANACODE2").await;
        let bo = sign_up(store, "bo@example.com", Some("anacode2"), "BOCODE23").await;
        let mut premium_account = NewAccount::new("Cy", "USD");
        premium_account.tariff_id = Some(premium.id);
        let cy = store
            .create_account(&premium_account, MONTH_START)
            .await
            .unwrap()
            .id;
        for (account, reseller) in [(bo, Some(shop.id)), (cy, Some(shop.id))] {
            store.set_account_reseller(account, reseller).await.unwrap();
        }
        for account in [ana, cy] {
            store
                .recharge(account, 50 * UNIT, Some("operator"), MONTH_START)
                .await
                .unwrap();
        }
        let spec = VoucherBatchSpec {
            name: "shop".into(),
            count: 2,
            code_length: 12,
            value_micros: 20 * UNIT,
            currency: "USD".into(),
            expires_at_ms: None,
            design: None,
        };
        let vouchers = store
            .generate_vouchers(&spec, MONTH_START)
            .await
            .unwrap()
            .codes;

        let (mut spent_ana, mut spent_bo, mut spent_cy) = (0_i64, 0_i64, 0_i64);
        for day in 1..=30_i64 {
            let at = MONTH_START + day * DAY;
            if day == 3 || day == 20 {
                let code = &vouchers[usize::from(day == 20)];
                store.redeem_voucher(bo, code, None, at).await.unwrap();
            }
            let ana_cost = day * 37_001;
            call(store, ana, &format!("ana-{day}"), ana_cost, at).await;
            spent_ana += ana_cost;
            if day >= 3 && day % 2 == 0 {
                call(store, bo, &format!("bo-{day}"), 123_457, at + 1_000).await;
                spent_bo += 123_457;
            }
            if day % 5 == 0 {
                call(store, cy, &format!("cy-{day}"), 1_000_003, at + 2_000).await;
                spent_cy += 1_000_003;
            }
            // A sweep now and then, as the switch runs it: nothing twice, nothing lost.
            if day % 7 == 0 {
                store.award_points(at, 1_000).await.unwrap();
            }
        }
        let end = MONTH_START + 31 * DAY + POINTS_SETTLE_MARGIN_MS;
        while store.award_points(end, 7).await.unwrap() == 7 {}
        assert_eq!(store.award_points(end, 1_000).await.unwrap(), 0);
        assert_eq!(store.points(ana).await.unwrap(), spent_ana * 10 / UNIT);
        assert_eq!(store.points(bo).await.unwrap(), spent_bo * 25 / UNIT);
        assert_eq!(store.points(cy).await.unwrap(), spent_cy * 3 / UNIT);
        assert_eq!(store.points(ana).await.unwrap(), 172, "{spent_ana}");

        // The referral: both sides once, at Bo's first voucher, not his second.
        let ana_lines = store.transactions(ana).await.unwrap();
        let bo_lines = store.transactions(bo).await.unwrap();
        assert_eq!(
            kind_total(&ana_lines, TransactionKind::Referral),
            vec![2 * UNIT]
        );
        assert_eq!(kind_total(&bo_lines, TransactionKind::Referral), vec![UNIT]);

        // Points buy credit at the currency's value, once per key.
        store.set_points_value("USD", 10_000).await.unwrap();
        let before = store.balance(ana).await.unwrap();
        assert_eq!(
            store.redeem_points(ana, 150, "form-1", end).await.unwrap(),
            PointsRedemption::Credited {
                credit_micros: 1_500_000,
                points_left: 22
            }
        );
        assert_eq!(
            store.redeem_points(ana, 150, "form-1", end).await.unwrap(),
            PointsRedemption::Replayed
        );
        assert_eq!(
            store.redeem_points(ana, 23, "form-2", end).await.unwrap(),
            PointsRedemption::NotEnoughPoints { points: 22 }
        );
        assert_eq!(store.balance(ana).await.unwrap(), before + 1_500_000);
        let lines = store.points_lines(ana, 100).await.unwrap();
        assert_eq!(lines[0].points, -150);
        assert_eq!(lines.iter().map(|line| line.points).sum::<i64>(), 22);
        let credits = kind_total(
            &store.transactions(ana).await.unwrap(),
            TransactionKind::Points,
        );
        assert_eq!(credits, vec![1_500_000]);
    }
);

ledger_test!(
    points_buy_free_minutes_once_per_form_kept_in_a_one_time_package,
    |store| {
        let ana = sign_up(store, "ana@example.com", None, "ANAMINUT").await;
        let bo = sign_up(store, "bo@example.com", None, "BOMINUTE").await;
        store
            .recharge(ana, 10 * UNIT, None, MONTH_START)
            .await
            .unwrap();
        store
            .recharge(bo, 10 * UNIT, None, MONTH_START)
            .await
            .unwrap();
        store
            .set_points_rule(PointsScope::Everyone, 100)
            .await
            .unwrap();
        call(store, ana, "ana-1", UNIT, MONTH_START).await;
        call(store, bo, "bo-1", UNIT, MONTH_START).await;
        let later = MONTH_START + POINTS_SETTLE_MARGIN_MS + 60_000;
        store.award_points(later, 100).await.unwrap();
        assert_eq!(store.points(ana).await.unwrap(), 100);

        // No offer yet, then 20 points a minute on the US and the UK.
        assert_eq!(
            store
                .redeem_points_for_minutes(ana, 1, "k0", later)
                .await
                .unwrap(),
            MinutesRedemption::NoOffer
        );
        assert!(store.set_points_minutes("USD", 20, "1,x").await.is_err());
        store.set_points_minutes("USD", 20, "1, +44").await.unwrap();
        assert_eq!(
            store.points_minutes("USD").await.unwrap().unwrap().prefixes,
            "1,44"
        );
        assert_eq!(
            store
                .redeem_points_for_minutes(ana, 2, "k1", later)
                .await
                .unwrap(),
            MinutesRedemption::Added {
                seconds_left: 120,
                points_left: 60
            }
        );
        assert_eq!(
            store
                .redeem_points_for_minutes(ana, 2, "k1", later)
                .await
                .unwrap(),
            MinutesRedemption::Replayed
        );
        let plan = store.account_plan(ana).await.unwrap().unwrap();
        assert_eq!(plan.package_seconds_left(later), 120);
        assert!(plan.package_covers("+15551234567") && plan.package_covers("442071234567"));
        assert!(!plan.package_covers("3312345678"));

        // A call uses 30 free seconds; a minute more is added to the 90 left.
        store
            .authorize("ana-2", Payer::Account(ana), later, hold)
            .await
            .unwrap();
        let extras = SettleExtras {
            package_seconds: 30,
            ..SettleExtras::default()
        };
        store
            .settle_call("ana-2", 0, &[], later + 30_000, extras)
            .await
            .unwrap();
        assert_eq!(
            store
                .redeem_points_for_minutes(ana, 1, "k2", later)
                .await
                .unwrap(),
            MinutesRedemption::Added {
                seconds_left: 150,
                points_left: 40
            }
        );
        assert_eq!(
            store
                .redeem_points_for_minutes(ana, 3, "k3", later)
                .await
                .unwrap(),
            MinutesRedemption::NotEnoughPoints { points: 40 }
        );
        let lines = store.points_lines(ana, 10).await.unwrap();
        assert_eq!(
            lines
                .iter()
                .filter(|line| line.kind == "minutes")
                .map(|line| line.points)
                .collect::<Vec<_>>(),
            vec![-20, -40]
        );

        // A plan that renews its package every period keeps it as it is, and the points.
        let plan = PlanRow {
            account_id: bo,
            package_seconds: 600,
            package_prefixes: "1".into(),
            package_every_ms: 30 * DAY,
            ..PlanRow::default()
        };
        store.set_account_plan(&plan, later).await.unwrap();
        assert_eq!(
            store
                .redeem_points_for_minutes(bo, 1, "k1", later)
                .await
                .unwrap(),
            MinutesRedemption::PlanPackage
        );
        assert_eq!(store.points(bo).await.unwrap(), 100);
        let kept = store.account_plan(bo).await.unwrap().unwrap();
        assert_eq!(kept.package_every_ms, 30 * DAY);
        assert_eq!(kept.package_seconds_left(later), 600);
    }
);
