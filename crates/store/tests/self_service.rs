//! Customer self-service on both backends (issue 22): a sign-up logs in by e-mail (any case,
//! once an address), a referral code that names nobody creates nothing, a referral pays both
//! sides once at the newcomer's first paid recharge, and a caller ID becomes an account's only
//! by the code from that very number before the claim expires.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod common;

use talktime_pii::Pii;
use talktime_store::{
    GiftCardPurchase, ReferralRewards, SignUp, SignUpOutcome, Store, TransactionKind,
    VoucherBatchSpec,
};

const NOW: i64 = 1_780_000_000_000;
const UNIT: i64 = 1_000_000;

async fn sign_up(store: &Store, email: &str, referral: Option<&str>, own: &str) -> SignUpOutcome {
    let email = Pii::new(email.to_owned());
    store
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
            NOW,
        )
        .await
        .unwrap()
}

fn created(outcome: SignUpOutcome) -> i64 {
    match outcome {
        SignUpOutcome::Created { account_id } => account_id,
        other => panic!("{other:?}"),
    }
}

async fn vouchers(store: &Store, count: u32) -> Vec<Pii<String>> {
    let spec = VoucherBatchSpec {
        name: "shop".into(),
        count,
        code_length: 12,
        value_micros: 5 * UNIT,
        currency: "USD".into(),
        expires_at_ms: None,
        design: None,
    };
    store.generate_vouchers(&spec, NOW).await.unwrap().codes
}

async fn referral_lines(store: &Store, account: i64) -> Vec<i64> {
    store
        .transactions(account)
        .await
        .unwrap()
        .into_iter()
        .filter(|entry| entry.kind == TransactionKind::Referral)
        .map(|entry| entry.amount_micros)
        .collect()
}

ledger_test!(a_sign_up_logs_in_by_email_once_an_address, |store| {
    let ana = created(sign_up(store, "Ana@Example.com", None, "AAAAAAAA").await);
    assert_eq!(
        store
            .account_by_login_email(" ana@example.COM ")
            .await
            .unwrap(),
        Some(ana)
    );
    assert_eq!(
        sign_up(store, "ana@example.com", None, "BBBBBBBB").await,
        SignUpOutcome::EmailTaken
    );
    assert_eq!(
        sign_up(store, "bo@example.com", Some("NOBODY99"), "CCCCCCCC").await,
        SignUpOutcome::UnknownReferral
    );
    assert_eq!(
        store
            .account_by_login_email("bo@example.com")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.referral_code(ana, "ZZZZZZZZ").await.unwrap(),
        "AAAAAAAA"
    );
});

ledger_test!(
    a_referral_pays_both_sides_once_at_the_first_paid_recharge,
    |store| {
        store
            .set_referral_rewards(&ReferralRewards {
                currency: "USD".into(),
                referrer_micros: 2 * UNIT,
                newcomer_micros: UNIT,
            })
            .await
            .unwrap();
        let referrer = created(sign_up(store, "ref@example.com", None, "REFCODE2").await);
        let newcomer =
            created(sign_up(store, "new@example.com", Some("refcode2"), "NEWCODE3").await);
        assert!(
            referral_lines(store, newcomer).await.is_empty(),
            "nothing before paying"
        );
        let codes = vouchers(store, 2).await;
        let mut announced = Vec::new();
        for code in &codes {
            let redeemed = store
                .redeem_voucher(newcomer, code, None, NOW)
                .await
                .unwrap();
            let talktime_store::Redemption::Credited { balance_micros, .. } = redeemed else {
                panic!("{redeemed:?}");
            };
            announced.push(balance_micros);
        }
        assert_eq!(
            announced,
            vec![6 * UNIT, 11 * UNIT],
            "the balance told the caller includes the reward paid with the voucher"
        );
        assert_eq!(referral_lines(store, newcomer).await, vec![UNIT]);
        assert_eq!(referral_lines(store, referrer).await, vec![2 * UNIT]);
        assert_eq!(store.balance(newcomer).await.unwrap(), 11 * UNIT);
        assert_eq!(store.balance(referrer).await.unwrap(), 2 * UNIT);
    }
);

ledger_test!(
    a_caller_id_is_registered_only_by_its_code_from_its_number,
    |store| {
        let ana = created(sign_up(store, "ana@example.com", None, "AAAAAAAA").await);
        let bo = created(sign_up(store, "bo@example.com", None, "BBBBBBBB").await);
        let phone = Pii::new("15550100200".to_owned());
        let other = Pii::new("15550100999".to_owned());
        let code = Pii::new("482913".to_owned());
        let expires = NOW + 900_000;
        store
            .claim_caller_id(ana, &phone, &code, expires, NOW)
            .await
            .unwrap();
        assert_eq!(store.caller_id_claims(ana, NOW).await.unwrap().len(), 1);
        let wrong = Pii::new("482914".to_owned());
        assert_eq!(
            store.confirm_caller_id(&phone, &wrong, NOW).await.unwrap(),
            None
        );
        assert_eq!(
            store.confirm_caller_id(&other, &code, NOW).await.unwrap(),
            None
        );
        assert_eq!(
            store
                .confirm_caller_id(&phone, &code, expires)
                .await
                .unwrap(),
            None
        );
        assert!(store.caller_ids_of(ana).await.unwrap().is_empty());
        assert_eq!(
            store
                .confirm_caller_id(&phone, &code, NOW + 1)
                .await
                .unwrap(),
            Some(ana)
        );
        assert_eq!(store.caller_ids_of(ana).await.unwrap(), vec![phone.clone()]);
        assert!(store.caller_id_claims(ana, NOW).await.unwrap().is_empty());
        assert_eq!(
            store
                .confirm_caller_id(&phone, &code, NOW + 2)
                .await
                .unwrap(),
            None
        );
        // A phone that changed hands: its new holder proves it and takes the number.
        store
            .claim_caller_id(bo, &phone, &wrong, expires, NOW)
            .await
            .unwrap();
        assert!(!store.remove_own_caller_id(bo, &other).await.unwrap());
        assert_eq!(
            store
                .confirm_caller_id(&phone, &wrong, NOW + 3)
                .await
                .unwrap(),
            Some(bo)
        );
        assert!(store.caller_ids_of(ana).await.unwrap().is_empty());
        assert!(store.remove_own_caller_id(bo, &phone).await.unwrap());
        assert!(store.lookup_caller_id(&phone).await.unwrap().is_none());
    }
);

ledger_test!(
    a_portal_code_logs_in_once_from_its_number_before_it_expires,
    |store| {
        let ana = created(sign_up(store, "ana@example.com", None, "AAAAAAAA").await);
        let bo = created(sign_up(store, "bo@example.com", None, "BBBBBBBB").await);
        let phone = Pii::new("15550100200".to_owned());
        let other = Pii::new("15550100999".to_owned());
        let code = Pii::new("482913".to_owned());
        let expires = NOW + 900_000;
        store
            .issue_portal_code(ana, &phone, &code, expires, NOW)
            .await
            .unwrap();
        let wrong = Pii::new("482914".to_owned());
        assert_eq!(
            store.use_portal_code(&phone, &wrong, NOW).await.unwrap(),
            None
        );
        assert_eq!(
            store.use_portal_code(&other, &code, NOW).await.unwrap(),
            None
        );
        assert_eq!(
            store.use_portal_code(&phone, &code, expires).await.unwrap(),
            None,
            "expired"
        );
        // A phone confirmation code is not a login code.
        store
            .claim_caller_id(ana, &other, &code, expires, NOW)
            .await
            .unwrap();
        assert_eq!(
            store.use_portal_code(&other, &code, NOW).await.unwrap(),
            None
        );
        assert_eq!(
            store.use_portal_code(&phone, &code, NOW + 1).await.unwrap(),
            Some(ana)
        );
        assert_eq!(
            store.use_portal_code(&phone, &code, NOW + 2).await.unwrap(),
            None,
            "used up"
        );
        // A new code for the number replaces the old one, for whichever account called.
        store
            .issue_portal_code(ana, &phone, &code, expires, NOW)
            .await
            .unwrap();
        store
            .issue_portal_code(bo, &phone, &wrong, expires, NOW + 3)
            .await
            .unwrap();
        assert_eq!(
            store.use_portal_code(&phone, &code, NOW + 4).await.unwrap(),
            None
        );
        assert_eq!(
            store
                .use_portal_code(&phone, &wrong, NOW + 4)
                .await
                .unwrap(),
            Some(bo)
        );
    }
);

ledger_test!(
    a_gift_card_is_bought_from_free_credit_once_and_redeemed_by_anyone,
    |store| {
        let giver = created(sign_up(store, "giver@example.com", None, "GIVER234").await);
        let friend = created(sign_up(store, "friend@example.com", None, "FRIEND23").await);
        store.recharge(giver, 10 * UNIT, None, NOW).await.unwrap();
        assert_eq!(
            store
                .buy_gift_card(giver, 11 * UNIT, "Birthday", "k1", NOW)
                .await
                .unwrap(),
            GiftCardPurchase::NotEnoughCredit {
                free_micros: 10 * UNIT
            }
        );
        let GiftCardPurchase::Bought {
            voucher_id,
            code,
            balance_micros,
        } = store
            .buy_gift_card(giver, 4 * UNIT, "Birthday", "k2", NOW)
            .await
            .unwrap()
        else {
            panic!("not bought");
        };
        assert_eq!(balance_micros, 6 * UNIT);
        assert_eq!(
            store
                .buy_gift_card(giver, 4 * UNIT, "Birthday", "k2", NOW)
                .await
                .unwrap(),
            GiftCardPurchase::Replayed
        );
        assert_eq!(store.balance(giver).await.unwrap(), 6 * UNIT);
        assert_eq!(
            store.voucher_design(voucher_id).await.unwrap().as_deref(),
            Some("Birthday")
        );
        let redeemed = store
            .redeem_voucher(friend, &code, None, NOW)
            .await
            .unwrap();
        assert!(
            matches!(redeemed, talktime_store::Redemption::Credited { .. }),
            "{redeemed:?}"
        );
        assert_eq!(store.balance(friend).await.unwrap(), 4 * UNIT);
        let gift_lines: Vec<i64> = store
            .transactions(giver)
            .await
            .unwrap()
            .into_iter()
            .filter(|entry| entry.kind == TransactionKind::GiftCard)
            .map(|entry| entry.amount_micros)
            .collect();
        assert_eq!(gift_lines, vec![-4 * UNIT]);
    }
);
