//! Group commit on SQLite (issue 19): write transactions that end while others wait share one
//! COMMIT, each caller answered once its rows are committed; a member that fails inside a group
//! is undone alone. Checked on the embedded ledger, where groups exist.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use talktime_store::*;

const UNIT: i64 = MICROS_PER_UNIT;
const NOW: i64 = 1_700_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_commits_and_a_failed_member_is_undone_alone() {
    let database = common::TestDb::sqlite().await;
    let store = database.store.clone();
    let accounts = funded_accounts(&store, "group", 40).await;
    let (groups_before, members_before) = store.write_groups().unwrap();
    // 40 callers at once, 5 rounds each: every odd account's authorizations are refused inside
    // the transaction (after its lock), the even ones' authorized and settled at 0.10.
    let tasks: Vec<_> = accounts
        .iter()
        .enumerate()
        .map(|(index, &account)| {
            let store = store.clone();
            tokio::spawn(async move {
                for round in 0..5 {
                    let key = format!("call-{index}-{round}#1");
                    let refused = index % 2 == 1;
                    let result = store
                        .authorize(&key, Payer::Account(account), NOW, |_| {
                            if refused {
                                Err(Refusal::NoRate)
                            } else {
                                Ok(Decision::new(UNIT, 60_000))
                            }
                        })
                        .await;
                    match (refused, result) {
                        (true, Err(StoreError::Refused(Refusal::NoRate))) => {}
                        (false, Ok(_)) => {
                            store.settle(&key, UNIT / 10, &[], NOW).await.unwrap();
                            // Answered only once committed: a fresh reader sees it settled.
                            let row = store.reservation(&key).await.unwrap().unwrap();
                            assert_eq!(row.state, ReservationState::Settled);
                        }
                        (refused, other) => panic!("refused={refused}: {other:?}"),
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let expected: Vec<(i64, i64)> = accounts
        .iter()
        .enumerate()
        .map(|(index, &account)| {
            let balance = if index % 2 == 0 {
                10 * UNIT - 5 * UNIT / 10
            } else {
                10 * UNIT
            };
            (account, balance)
        })
        .collect();
    assert_balances(&store, &expected).await;
    // 20 accounts x 5 rounds x (authorize + settle) committed, plus the refused ones' empty
    // members; fewer COMMITs than write transactions means groups formed.
    assert_grouped(&store, (groups_before, members_before), 200).await;
    database.finish().await;
}

/// A member that wrote and then failed (a settle that finds its card activated by another
/// call after claiming the reservation) is undone alone while others share its group, and
/// one-statement writes (the answer checkpoints) are members of the groups too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_that_wrote_then_failed_is_undone_alone_and_checkpoints_join_groups() {
    let database = common::TestDb::sqlite().await;
    let store = database.store.clone();
    let mut cards = Vec::new();
    for index in 0..40 {
        let mut card = NewCard::new(
            talktime_pii::Pii::new(format!("7100{index:04}")),
            "USD",
            10 * UNIT,
        );
        card.concurrency_limit = 0;
        let card = store.create_card(&card, NOW).await.unwrap();
        assert!(store.activate_card(card.id, 0, NOW).await.unwrap());
        cards.push(card);
    }
    let (groups_before, members_before) = store.write_groups().unwrap();
    let tasks: Vec<_> = cards
        .iter()
        .enumerate()
        .map(|(index, card)| {
            let store = store.clone();
            let card_id = card.id;
            tokio::spawn(async move {
                for round in 0..5 {
                    let key = format!("card-{index}-{round}#1");
                    store
                        .authorize(&key, Payer::Card(card_id), NOW, |_| {
                            Ok(Decision::new(UNIT, 60_000))
                        })
                        .await
                        .unwrap();
                    assert!(store.checkpoint_answer(&key, NOW, "{}").await.unwrap());
                    // The card had its first use: a cost with an activation fee is refused
                    // after the reservation was claimed, and the claim is undone.
                    let with_fee = SettleExtras {
                        first_use: Some(FirstUse {
                            card_id,
                            activation_fee_micros: UNIT / 100,
                        }),
                        ..SettleExtras::default()
                    };
                    let refused = store.settle_call(&key, UNIT / 10, &[], NOW, with_fee).await;
                    assert!(
                        matches!(refused, Err(StoreError::AlreadyActivated { .. })),
                        "{refused:?}"
                    );
                    let row = store.reservation(&key).await.unwrap().unwrap();
                    assert_eq!(row.state, ReservationState::Open);
                    store.settle(&key, UNIT / 10, &[], NOW).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let expected: Vec<(i64, i64)> = cards
        .iter()
        .map(|card| (card.account_id, 10 * UNIT - 5 * UNIT / 10))
        .collect();
    assert_balances(&store, &expected).await;
    // 200 calls x (authorize + checkpoint + settle); the refused settles are no members.
    assert_grouped(&store, (groups_before, members_before), 600).await;
    database.finish().await;
}

/// A call's writes run on the writer's rusqlite connection and the other writes (a recharge)
/// through sqlx: interleaved from many tasks, every write lands once, each answered only once
/// committed, whichever connection the group it joined was on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_and_other_writes_interleave_on_the_two_writer_connections() {
    let database = common::TestDb::sqlite().await;
    let store = database.store.clone();
    let accounts = funded_accounts(&store, "mixed", 30).await;
    let (groups_before, members_before) = store.write_groups().unwrap();
    let tasks: Vec<_> = accounts
        .iter()
        .enumerate()
        .map(|(index, &account)| {
            let store = store.clone();
            tokio::spawn(async move {
                for round in 0..5 {
                    let key = format!("mixed-{index}-{round}#1");
                    store
                        .authorize(&key, Payer::Account(account), NOW, |_| {
                            Ok(Decision::new(UNIT, 60_000))
                        })
                        .await
                        .unwrap();
                    let before = store.balance(account).await.unwrap();
                    store.recharge(account, UNIT, None, NOW).await.unwrap();
                    assert_eq!(store.balance(account).await.unwrap(), before + UNIT);
                    store.settle(&key, UNIT / 10, &[], NOW).await.unwrap();
                    let row = store.reservation(&key).await.unwrap().unwrap();
                    assert_eq!(row.state, ReservationState::Settled);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let expected: Vec<(i64, i64)> = accounts
        .iter()
        .map(|&account| (account, 10 * UNIT + 5 * UNIT - 5 * UNIT / 10))
        .collect();
    assert_balances(&store, &expected).await;
    let charges: i64 = {
        let mut lines = 0;
        for &account in &accounts {
            lines += store.transactions(account).await.unwrap().len() as i64;
        }
        lines
    };
    // Each account: its opening recharge, 5 recharges and 5 call charges.
    assert_eq!(charges, 30 * 11);
    assert_grouped(&store, (groups_before, members_before), 450).await;
    database.finish().await;
}

/// `count` accounts named `prefix-N`, each with 10 units and no limit on calls at once.
async fn funded_accounts(store: &Store, prefix: &str, count: usize) -> Vec<i64> {
    let mut accounts = Vec::with_capacity(count);
    for index in 0..count {
        let name = format!("{prefix}-{index}");
        accounts.push(common::uncapped_account(store, &name, "USD", 10 * UNIT, NOW).await);
    }
    accounts
}

/// Each account has its balance, holds nothing, and the ledger's balances agree with its lines.
async fn assert_balances(store: &Store, expected: &[(i64, i64)]) {
    for &(account, balance) in expected {
        assert_eq!(
            store.balance(account).await.unwrap(),
            balance,
            "account {account}"
        );
        assert!(store.open_reservations(account).await.unwrap().is_empty());
    }
    assert!(store.check_balances().await.unwrap().is_empty());
}

/// Since `before` (groups, members), at least `min_members` write transactions were committed
/// in fewer COMMITs.
async fn assert_grouped(store: &Store, before: (u64, u64), min_members: u64) {
    let (groups, members) = store.write_groups().unwrap();
    let (groups, members) = (groups - before.0, members - before.1);
    assert!(members >= min_members, "{members} write transactions");
    assert!(
        groups < members,
        "{members} write transactions in {groups} commits"
    );
}

/// The checkpointer's thread copies committed pages back into the database file while the
/// writer goes on (issue 19): the writer's own connections checkpoint only past 65,536 WAL
/// frames, far beyond what this test writes, so the file can grow only by the checkpointer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpointer_copies_the_wal_back_while_writes_go_on() {
    let database = common::TestDb::sqlite().await;
    let store = database.store.clone();
    let file = std::path::Path::new(&database.url).join(SQLITE_FILE_NAME);
    let wal = std::path::Path::new(&database.url).join(format!("{SQLITE_FILE_NAME}-wal"));
    // Settle what opening wrote (migrations), then measure from there.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let size_before = std::fs::metadata(&file).unwrap().len();
    let accounts = funded_accounts(&store, "checkpoint", 400).await;
    assert_eq!(accounts.len(), 400);
    let wal_written = std::fs::metadata(&wal).unwrap().len();
    assert!(wal_written > 0, "the writes went to the WAL");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let size = std::fs::metadata(&file).unwrap().len();
        if size > size_before {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file stayed at {size_before} bytes with {wal_written} bytes of WAL"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
