//! Crash recovery: a child process (this test binary, re-run with an env var) reserves credit
//! and is killed with SIGKILL before settling; the parent reconciles and checks the ledger.
//! Runs on SQLite and PostgreSQL, with and without a CDR written before the crash.
//! `harness = false`: `main` is either the parent or the child.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use talktime_pii::Pii;
use talktime_store::{Cdr, Decision, NewCard, Payer, ReservationState, Store};

const CHILD_URL: &str = "TALKTIME_CRASH_CHILD_URL";
const CHILD_CARD: &str = "TALKTIME_CRASH_CHILD_CARD";
const CHILD_CDR: &str = "TALKTIME_CRASH_CHILD_CDR";
const CALL_ID: &str = "crash-call";
const UNIT: i64 = 1_000_000;
const CDR_TOTAL: i64 = 1_250_000;
const NOW: i64 = 1_700_000_000_000;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    if let Ok(url) = std::env::var(CHILD_URL) {
        runtime.block_on(child(&url));
        return;
    }
    let mut passed = 0;
    for postgres in [false, true] {
        for with_cdr in [false, true] {
            runtime.block_on(parent(postgres, with_cdr));
            passed += 1;
            println!("crash scenario ok: postgres={postgres} cdr_before_crash={with_cdr}");
        }
    }
    println!("test result: ok. {passed} crash scenarios passed");
}

/// Reserves, optionally writes the CDR, says so, then waits to be killed.
async fn child(url: &str) {
    let card_id: i64 = std::env::var(CHILD_CARD)
        .expect("card id")
        .parse()
        .expect("numeric card id");
    let store = Store::open_with(url, &common::test_options())
        .await
        .expect("child opens the store");
    store
        .authorize(CALL_ID, Payer::Card(card_id), NOW, |_| {
            Ok(Decision::new(3 * UNIT, 180_000))
        })
        .await
        .expect("child reserves");
    if std::env::var(CHILD_CDR).is_ok() {
        store
            .write_cdr(&cdr(card_id), NOW + 60_000)
            .await
            .expect("child writes the CDR");
    }
    println!("reserved");
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
}

fn cdr(card_id: i64) -> Cdr {
    Cdr {
        call_id: CALL_ID.into(),
        attempt: 1,
        account_id: None,
        card_id: Some(card_id),
        caller_id: None,
        access_number: None,
        destination: Pii::new("4930123456".into()),
        carrier: Some("a".into()),
        start_ms: NOW,
        answer_ms: Some(NOW + 1_000),
        end_ms: NOW + 61_000,
        billed_seconds: 60,
        fees_json: "[]".into(),
        taxes_json: "[]".into(),
        tax_micros: 0,
        total_micros: CDR_TOTAL,
        buy_cost_micros: 500_000,
        sip_code: Some(200),
        q850_cause: Some(16),
        hangup_by: Some("caller".into()),
        disconnect_cause: Some("caller_hung_up".into()),
    }
}

async fn parent(postgres: bool, with_cdr: bool) {
    let database = if postgres {
        common::TestDb::postgres().await
    } else {
        common::TestDb::sqlite().await
    };
    let store = &database.store;
    let card = store
        .create_card(
            &NewCard::new(Pii::new("5150515".into()), "EUR", 10 * UNIT),
            NOW,
        )
        .await
        .expect("card");

    let mut command = Command::new(std::env::current_exe().expect("own path"));
    command
        .env(CHILD_URL, &database.url)
        .env(CHILD_CARD, card.id.to_string())
        .stdout(Stdio::piped());
    if with_cdr {
        command.env(CHILD_CDR, "1");
    }
    let mut child = command.spawn().expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read child");
    assert_eq!(line.trim(), "reserved", "child did not reserve");
    child.kill().expect("SIGKILL the child");
    let status = child.wait().expect("reap child");
    assert!(!status.success(), "the child was killed, not finished");

    let stale = store
        .reservation(CALL_ID)
        .await
        .unwrap()
        .expect("reservation");
    assert_eq!(stale.state, ReservationState::Open);
    assert_eq!(store.balance(card.account_id).await.unwrap(), 10 * UNIT);

    let report = store.reconcile(NOW + 1, NOW + 120_000).await.unwrap();
    let after = store
        .reservation(CALL_ID)
        .await
        .unwrap()
        .expect("reservation");
    assert!(
        store
            .open_reservations(card.account_id)
            .await
            .unwrap()
            .is_empty()
    );
    if with_cdr {
        assert_eq!(report.settled, vec![(CALL_ID.to_owned(), CDR_TOTAL)]);
        assert!(report.released.is_empty());
        assert_eq!(after.state, ReservationState::Settled);
        assert_eq!(
            store.balance(card.account_id).await.unwrap(),
            10 * UNIT - CDR_TOTAL
        );
    } else {
        assert_eq!(report.released, vec![CALL_ID.to_owned()]);
        assert_eq!(after.state, ReservationState::Released);
        assert_eq!(store.balance(card.account_id).await.unwrap(), 10 * UNIT);
    }
    assert!(store.check_balances().await.unwrap().is_empty());
    database.finish().await;
}
