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
    let mut accounts = Vec::new();
    for index in 0..40 {
        let mut account = NewAccount::new(format!("group-{index}"), "USD");
        account.concurrency_limit = 0;
        let account = store.create_account(&account, NOW).await.unwrap();
        store
            .recharge(account.id, 10 * UNIT, None, NOW)
            .await
            .unwrap();
        accounts.push(account.id);
    }
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
    for (index, account) in accounts.iter().enumerate() {
        let expected = if index % 2 == 0 {
            10 * UNIT - 5 * UNIT / 10
        } else {
            10 * UNIT
        };
        assert_eq!(
            store.balance(*account).await.unwrap(),
            expected,
            "account {index}"
        );
        assert!(store.open_reservations(*account).await.unwrap().is_empty());
    }
    assert!(store.check_balances().await.unwrap().is_empty());
    let (groups, members) = store.write_groups().unwrap();
    let (groups, members) = (groups - groups_before, members - members_before);
    // 20 accounts x 5 rounds x (authorize + settle) committed, plus the refused ones' empty
    // members; fewer COMMITs than write transactions means groups formed.
    assert!(members >= 200, "{members} write transactions");
    assert!(
        groups < members,
        "{members} write transactions in {groups} commits"
    );
    database.finish().await;
}
