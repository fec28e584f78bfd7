//! Resellers (issue 16): holds on every level in one transaction, one charge per level at
//! settle, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::sync::Arc;

use talktime_store::*;

const UNIT: i64 = MICROS_PER_UNIT;
const NOW: i64 = 1_700_000_000_000;

/// Holds `own` on the customer and `each_level` on every reseller above it, refusing when a
/// level cannot pay that much (as the billing crate's level limit does).
fn hold(own: i64, each_level: i64) -> impl FnOnce(&Available) -> Result<Decision, Refusal> {
    move |available: &Available| {
        if available.available_micros < own {
            return Err(Refusal::InsufficientCredit {
                available_micros: available.available_micros,
                needed_micros: own,
            });
        }
        for level in &available.levels {
            if level.available_micros < each_level {
                return Err(Refusal::InsufficientCredit {
                    available_micros: level.available_micros,
                    needed_micros: each_level,
                });
            }
        }
        let mut decision = Decision::new(own, 60_000);
        decision.level_holds = vec![each_level; available.levels.len()];
        Ok(decision)
    }
}

async fn reseller(store: &Store, name: &str, parent: Option<i64>, balance: i64) -> Reseller {
    let new = NewReseller {
        name: name.to_owned(),
        parent_id: parent,
        currency: "USD".to_owned(),
        tariff_id: None,
        credit_limit_micros: 0,
        concurrency_limit: 0,
        max_depth: DEFAULT_MAX_RESELLER_DEPTH,
        sell_tariff_id: None,
        min_margin_percent: 0,
    };
    let added = store.add_reseller(&new, NOW).await.unwrap();
    if balance > 0 {
        store
            .recharge(added.account_id, balance, None, NOW)
            .await
            .unwrap();
    }
    added
}

async fn customer(store: &Store, of: &Reseller, balance: i64) -> Account {
    let mut account = NewAccount::new("customer", "USD");
    account.concurrency_limit = 0;
    let account = store.create_account(&account, NOW).await.unwrap();
    store
        .recharge(account.id, balance, None, NOW)
        .await
        .unwrap();
    store
        .set_account_reseller(account.id, Some(of.id))
        .await
        .unwrap();
    account
}

/// The sum of an account's call charges, from its transaction rows.
async fn call_charges(store: &Store, account_id: i64) -> i64 {
    store
        .transactions(account_id)
        .await
        .unwrap()
        .iter()
        .filter(|entry| entry.kind == TransactionKind::CallCharge)
        .map(|entry| -entry.amount_micros)
        .sum()
}

ledger_test!(
    a_reseller_credit_for_one_call_admits_one_of_100_customers,
    |store| {
        let top = reseller(store, "top", None, 100 * UNIT).await;
        let shop = reseller(store, "shop", Some(top.id), UNIT).await;
        let mut customers = Vec::new();
        for _ in 0..100 {
            customers.push(customer(store, &shop, 10 * UNIT).await);
        }
        let barrier = Arc::new(tokio::sync::Barrier::new(customers.len()));
        let tasks: Vec<_> = customers
            .iter()
            .enumerate()
            .map(|(index, account)| {
                let (store, barrier, account) = (store.clone(), barrier.clone(), account.id);
                tokio::spawn(async move {
                    barrier.wait().await;
                    let payer = Payer::Account(account);
                    let call = format!("call-{index}");
                    store
                        .authorize(&call, payer, NOW, hold(UNIT, 600_000))
                        .await
                })
            })
            .collect();
        let mut admitted = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(reservation) => admitted.push(reservation),
                Err(error) => assert!(
                    matches!(
                        error,
                        StoreError::Refused(Refusal::InsufficientCredit { .. })
                    ),
                    "{error}"
                ),
            }
        }
        assert_eq!(admitted.len(), 1, "the shop's 1.00 covers one call of 0.60");
        let levels = store.call_levels(&admitted[0].call_id).await.unwrap();
        assert_eq!(levels.len(), 2);
        assert_eq!(
            (levels[0].reseller_id, levels[1].reseller_id),
            (shop.id, top.id)
        );
        assert!(
            levels
                .iter()
                .all(|level| level.open && level.amount_micros == 600_000)
        );
        assert_eq!(store.reseller_holds(shop.id).await.unwrap(), (600_000, 1));
        // Released: the hold goes on every level and the next call fits again.
        store.release(&admitted[0].call_id, NOW).await.unwrap();
        assert_eq!(store.reseller_holds(shop.id).await.unwrap(), (0, 0));
        assert_eq!(store.reseller_holds(top.id).await.unwrap(), (0, 0));
        let payer = Payer::Account(customers[1].id);
        store
            .authorize("again", payer, NOW, hold(UNIT, 600_000))
            .await
            .unwrap();
    }
);

ledger_test!(each_level_is_charged_once_at_its_own_price, |store| {
    // vendor -> wholesale -> shop -> customer; a settle charges each its price.
    let wholesale = reseller(store, "wholesale", None, 50 * UNIT).await;
    let shop = reseller(store, "shop", Some(wholesale.id), 20 * UNIT).await;
    let account = customer(store, &shop, 10 * UNIT).await;
    let prices = [
        (1_200_000, 900_000, 700_000),
        (2_400_000, 1_800_000, 1_400_000),
    ];
    for (index, (sold, shop_price, wholesale_price)) in prices.into_iter().enumerate() {
        let call = format!("priced-{index}");
        let payer = Payer::Account(account.id);
        store
            .authorize(&call, payer, NOW, hold(3 * UNIT, 3 * UNIT))
            .await
            .unwrap();
        let extras = SettleExtras {
            level_charges: &[shop_price, wholesale_price],
            ..SettleExtras::default()
        };
        let settled = store
            .settle_call(&call, sold, &[], NOW, extras)
            .await
            .unwrap();
        assert!(matches!(settled, SettleOutcome::Charged { .. }));
        // Again: nothing more on any level.
        let again = store
            .settle_call(&call, sold, &[], NOW, extras)
            .await
            .unwrap();
        assert!(matches!(again, SettleOutcome::Replayed { .. }));
    }
    assert_eq!(call_charges(store, account.id).await, 3_600_000);
    assert_eq!(call_charges(store, shop.account_id).await, 2_700_000);
    assert_eq!(call_charges(store, wholesale.account_id).await, 2_100_000);
    // Each level's ledger is what the level above charged it, and its statement says what
    // the level below paid it, to the micro-unit.
    let shop_lines = store.reseller_statement(shop.id, 100).await.unwrap();
    let bought: i64 = shop_lines
        .iter()
        .filter_map(|line| line.bought_micros)
        .sum();
    let sold: i64 = shop_lines.iter().filter_map(|line| line.sold_micros).sum();
    assert_eq!((sold, bought), (3_600_000, 2_700_000));
    let wholesale_lines = store.reseller_statement(wholesale.id, 100).await.unwrap();
    let bought: i64 = wholesale_lines
        .iter()
        .filter_map(|line| line.bought_micros)
        .sum();
    let sold: i64 = wholesale_lines
        .iter()
        .filter_map(|line| line.sold_micros)
        .sum();
    assert_eq!((sold, bought), (2_700_000, 2_100_000));
    assert_eq!(store.reseller_holds(shop.id).await.unwrap(), (0, 0));
    assert!(store.check_balances().await.unwrap().is_empty());
});

ledger_test!(
    a_suspended_or_busy_level_refuses_and_the_tree_is_checked,
    |store| {
        let top = reseller(store, "top", None, 100 * UNIT).await;
        let account = customer(store, &top, 10 * UNIT).await;
        let payer = Payer::Account(account.id);
        store
            .set_account_status(top.account_id, AccountStatus::Blocked)
            .await
            .unwrap();
        let refused = store.authorize("s", payer, NOW, hold(UNIT, UNIT)).await;
        assert!(
            matches!(
                refused,
                Err(StoreError::NotUsable {
                    entity: "reseller",
                    ..
                })
            ),
            "{refused:?}"
        );
        store
            .set_account_status(top.account_id, AccountStatus::Active)
            .await
            .unwrap();
        // A level's concurrency limit counts every customer's calls.
        let mut limited = NewReseller {
            name: "small".into(),
            parent_id: Some(top.id),
            currency: "USD".into(),
            tariff_id: None,
            credit_limit_micros: 5 * UNIT,
            concurrency_limit: 1,
            max_depth: DEFAULT_MAX_RESELLER_DEPTH,
            sell_tariff_id: None,
            min_margin_percent: 0,
        };
        let small = store.add_reseller(&limited, NOW).await.unwrap();
        let first = customer(store, &small, 10 * UNIT).await;
        let second = customer(store, &small, 10 * UNIT).await;
        store
            .authorize("one", Payer::Account(first.id), NOW, hold(UNIT, UNIT))
            .await
            .unwrap();
        let busy = store
            .authorize("two", Payer::Account(second.id), NOW, hold(UNIT, UNIT))
            .await;
        assert!(
            matches!(busy, Err(StoreError::ConcurrencyLimit { .. })),
            "{busy:?}"
        );
        // The credit limit lets a balance of zero pay: 5.00 free, not more.
        let (held, _) = store.reseller_holds(small.id).await.unwrap();
        assert_eq!(held, UNIT);
        // Depth: top (1) -> small (2) -> third (3) -> a fourth is refused.
        limited.name = "third".into();
        limited.parent_id = Some(small.id);
        let third = store.add_reseller(&limited, NOW).await.unwrap();
        assert_eq!(third.depth, 3);
        limited.name = "fourth".into();
        limited.parent_id = Some(third.id);
        assert!(matches!(
            store.add_reseller(&limited, NOW).await,
            Err(StoreError::InvalidArgument(_))
        ));
        // A reseller's own account is not a customer, and currencies must match.
        assert!(
            store
                .set_account_reseller(top.account_id, Some(small.id))
                .await
                .is_err()
        );
        let euro = store
            .create_account(&NewAccount::new("euro", "EUR"), NOW)
            .await
            .unwrap();
        assert!(
            store
                .set_account_reseller(euro.id, Some(top.id))
                .await
                .is_err()
        );
        // Back under the vendor: no levels any more.
        store.set_account_reseller(first.id, None).await.unwrap();
        assert!(store.reseller_chain(first.id).await.unwrap().is_empty());
    }
);

ledger_test!(commissions_are_paid_on_calls_and_payments_once, |store| {
    let wholesale = reseller(store, "wholesale", None, 50 * UNIT).await;
    let shop = reseller(store, "shop", Some(wholesale.id), 20 * UNIT).await;
    // The shop earns 2.5 % of its customers' calls plus 0.01 a call, and 3 % of their
    // payments; wholesale 10 % of what the shop pays for calls.
    let shop_terms = Commission {
        calls_bp: 250,
        call_flat_micros: 10_000,
        payments_bp: 300,
    };
    let mut terms = shop.terms();
    terms.commission = shop_terms;
    store.set_reseller_terms(shop.id, &terms).await.unwrap();
    let wholesale_terms = Commission {
        calls_bp: 1_000,
        ..Commission::default()
    };
    let mut terms = wholesale.terms();
    terms.commission = wholesale_terms;
    store
        .set_reseller_terms(wholesale.id, &terms)
        .await
        .unwrap();
    let account = customer(store, &shop, 10 * UNIT).await;
    // customer() recharged 10.00 before it was the shop's: no commission on that one.
    store
        .recharge(account.id, 5 * UNIT, None, NOW)
        .await
        .unwrap();
    store
        .recharge_once(account.id, 2 * UNIT, "till-1", NOW)
        .await
        .unwrap();
    store
        .recharge_once(account.id, 2 * UNIT, "till-1", NOW)
        .await
        .unwrap();
    let payer = Payer::Account(account.id);
    store
        .authorize("paid", payer, NOW, hold(3 * UNIT, 3 * UNIT))
        .await
        .unwrap();
    let extras = SettleExtras {
        level_charges: &[900_001, 700_000],
        ..SettleExtras::default()
    };
    store
        .settle_call("paid", 1_200_000, &[], NOW, extras)
        .await
        .unwrap();
    store
        .settle_call("paid", 1_200_000, &[], NOW, extras)
        .await
        .unwrap();
    let commissions = |account_id: i64| async move {
        store
            .transactions(account_id)
            .await
            .unwrap()
            .iter()
            .filter(|entry| entry.kind == TransactionKind::Commission)
            .map(|entry| entry.amount_micros)
            .collect::<Vec<i64>>()
    };
    // Payments: 3 % of 5.00 and of 2.00 (once); the call: 2.5 % of 1.20 plus 0.01.
    assert_eq!(
        commissions(shop.account_id).await,
        [150_000, 60_000, 40_000]
    );
    // 10 % of the shop's 0.900001, rounded down to the micro-unit.
    assert_eq!(commissions(wholesale.account_id).await, [90_000]);
    let lines = store.reseller_statement(shop.id, 10).await.unwrap();
    assert_eq!(lines[0].commission_micros, Some(40_000));
    assert!(store.check_balances().await.unwrap().is_empty());
});

ledger_test!(
    a_reseller_bounds_its_customers_new_calls_a_second,
    |store| {
        let shop = reseller(store, "shop", None, 100 * UNIT).await;
        let mut terms = shop.terms();
        terms.calls_per_second = 2;
        store.set_reseller_terms(shop.id, &terms).await.unwrap();
        assert_eq!(store.reseller(shop.id).await.unwrap().calls_per_second, 2);
        let first = customer(store, &shop, 10 * UNIT).await;
        let second = customer(store, &shop, 10 * UNIT).await;
        let at = |ms: i64| NOW + ms;
        for (call, account, ms) in [("a", &first, 0), ("b", &second, 400)] {
            store
                .authorize(call, Payer::Account(account.id), at(ms), hold(UNIT, UNIT))
                .await
                .unwrap();
        }
        let third = store
            .authorize("c", Payer::Account(first.id), at(900), hold(UNIT, UNIT))
            .await;
        assert!(
            matches!(third, Err(StoreError::CallRateLimit { per_second: 2, .. })),
            "{third:?}"
        );
        // A second after the first, one of the two has left the window.
        store
            .authorize("d", Payer::Account(first.id), at(1_001), hold(UNIT, UNIT))
            .await
            .unwrap();
    }
);

ledger_test!(
    a_callbacks_called_leg_counts_the_caller_legs_level_hold_back_and_resizes_it,
    |store| {
        let shop = reseller(store, "shop", None, UNIT).await;
        let account = customer(store, &shop, 10 * UNIT).await;
        let payer = Payer::Account(account.id);
        // The caller leg alone takes all the shop has.
        store
            .authorize("cb#0", payer, NOW, hold(2 * UNIT, UNIT))
            .await
            .unwrap();
        assert_eq!(store.reseller_holds(shop.id).await.unwrap(), (UNIT, 1));
        let seen = std::sync::Mutex::new(Vec::new());
        store
            .authorize_beside("cb#1", "cb#0", payer, NOW, |available, _held| {
                seen.lock().unwrap().extend(
                    available
                        .levels
                        .iter()
                        .map(|level| (level.available_micros, level.companion_micros)),
                );
                let mut decision = Decision::new(UNIT, 30_000);
                decision.level_holds = vec![600_000];
                decision.companion_level_holds = vec![400_000];
                Ok((decision, UNIT))
            })
            .await
            .unwrap();
        // The shop's whole credit was offered again (its caller-leg hold counted back), and
        // its two holds are what the decision said.
        assert_eq!(*seen.lock().unwrap(), vec![(UNIT, UNIT)]);
        assert_eq!(store.reseller_holds(shop.id).await.unwrap(), (UNIT, 2));
        let caller_leg = store.call_levels("cb#0").await.unwrap();
        assert_eq!(caller_leg[0].amount_micros, 400_000);
        // More than the level has for both legs is refused, and nothing changes.
        let refused = store
            .authorize_beside("cb#2", "cb#0", payer, NOW, |_, _| {
                let mut decision = Decision::new(UNIT, 30_000);
                decision.level_holds = vec![700_000];
                decision.companion_level_holds = vec![400_000];
                Ok((decision, UNIT))
            })
            .await;
        assert!(
            matches!(refused, Err(StoreError::ReservationTooLarge { .. })),
            "{refused:?}"
        );
        assert_eq!(
            store.call_levels("cb#0").await.unwrap()[0].amount_micros,
            400_000
        );
    }
);
