//! CDRs by time window and the traffic report, every store test on both SQLite and PostgreSQL.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use rust_decimal::Decimal;
use talktime_pii::Pii;
use talktime_store::*;

const FROM: i64 = 1_700_000_000_000;
const TO: i64 = FROM + 3_600_000;
const ACCESS_MAIN: &str = "+18005550100";
const ACCESS_OTHER: &str = "+18005550199";

/// `units` hundredths, e.g. `hundredths(6667)` is 66.67.
fn hundredths(units: i64) -> Decimal {
    Decimal::new(units, 2)
}

/// An answered attempt on carrier-a via the main access number; tests override fields.
fn attempt(call_id: &str, attempt: i64, start_ms: i64) -> Cdr {
    Cdr {
        call_id: call_id.to_owned(),
        attempt,
        account_id: None,
        card_id: None,
        caller_id: Some(Pii::new("+15550001111".to_owned())),
        access_number: Some(ACCESS_MAIN.to_owned()),
        destination: Pii::new("4930123456".to_owned()),
        carrier: Some("carrier-a".to_owned()),
        start_ms,
        answer_ms: Some(start_ms + 1_000),
        end_ms: start_ms + 61_000,
        billed_seconds: 60,
        fees_json: "[]".into(),
        taxes_json: "[]".into(),
        tax_micros: 0,
        total_micros: 0,
        buy_cost_micros: 0,
        sip_code: Some(200),
        q850_cause: Some(16),
        hangup_by: Some("caller".into()),
        disconnect_cause: Some("caller_hung_up".into()),
    }
}

/// Creates ten accounts (ids 1 to 10 on a fresh database) so that numeric and text order of
/// the ids differ.
async fn ten_accounts(store: &Store) -> Vec<Account> {
    let mut accounts = Vec::new();
    for index in 0..10 {
        let account = store
            .create_account(&NewAccount::new(format!("account-{index}"), "EUR"), FROM)
            .await
            .unwrap();
        accounts.push(account);
    }
    accounts
}

/// Ten accounts, then the traffic of one hour on the 2nd and the 10th, written out of order,
/// plus one CDR just before and one exactly at the end of the window. Returns the two
/// account ids and the CDRs inside the window, in `cdrs_between` order.
async fn write_traffic(store: &Store) -> (i64, i64, Vec<Cdr>) {
    let accounts = ten_accounts(store).await;
    let (first, second) = (accounts[1].id, accounts[9].id);
    // Numeric order differs from text order ("10" < "2"): the report must use numbers.
    assert!(first < second && second.to_string() < first.to_string());
    // Starts exactly at `FROM`: included. 60 s of talk.
    let mut c1 = attempt("c1", 1, FROM);
    c1.account_id = Some(first);
    c1.answer_ms = Some(FROM + 2_000);
    c1.end_ms = FROM + 62_000;
    c1.billed_seconds = 60;
    c1.total_micros = 1_200_000;
    c1.tax_micros = 200_000;
    c1.buy_cost_micros = 500_000;

    // Busy on carrier-a, then 90 s on carrier-b.
    let mut busy = attempt("c2", 1, FROM + 10_000);
    busy.account_id = Some(second);
    busy.answer_ms = None;
    busy.end_ms = FROM + 15_000;
    busy.billed_seconds = 0;
    busy.sip_code = Some(486);
    busy.q850_cause = Some(17);
    busy.hangup_by = None;
    busy.disconnect_cause = Some("busy".into());

    let mut failover = attempt("c2", 2, FROM + 15_000);
    failover.account_id = Some(second);
    failover.carrier = Some("carrier-b".into());
    failover.answer_ms = Some(FROM + 20_000);
    failover.end_ms = FROM + 110_000;
    failover.billed_seconds = 90;
    failover.total_micros = 1_800_000;
    failover.tax_micros = 300_000;
    failover.buy_cost_micros = 900_000;

    // 30.25 s of talk: carrier-a's ACD is (60 + 30.25) / 2 = 45.125, a midpoint.
    let mut c3 = attempt("c3", 1, FROM + 20_000);
    c3.account_id = Some(first);
    c3.access_number = Some(ACCESS_OTHER.into());
    c3.answer_ms = Some(FROM + 21_000);
    c3.end_ms = FROM + 51_250;
    c3.billed_seconds = 31;
    c3.total_micros = 620_000;
    c3.tax_micros = 100_000;
    c3.buy_cost_micros = 250_000;

    // No account, access number or carrier (no route); same start as c3, ordered after it.
    let mut unrouted = attempt("c4", 1, FROM + 20_000);
    unrouted.access_number = None;
    unrouted.carrier = None;
    unrouted.answer_ms = None;
    unrouted.end_ms = FROM + 20_500;
    unrouted.billed_seconds = 0;
    unrouted.sip_code = Some(404);
    unrouted.q850_cause = Some(1);
    unrouted.disconnect_cause = Some("no_route".into());

    // Outside the window; they would change every figure of carrier-a and the first account.
    let mut early = attempt("early", 1, FROM - 1);
    early.account_id = Some(first);
    early.total_micros = 9_000_000;
    early.buy_cost_micros = 1_000_000;
    let mut late = attempt("late", 1, TO);
    late.account_id = Some(first);
    late.total_micros = 7_000_000;
    late.buy_cost_micros = 1_000_000;

    for cdr in [&unrouted, &late, &c3, &failover, &early, &c1, &busy] {
        assert!(store.write_cdr(cdr, FROM).await.unwrap());
    }
    (first, second, vec![c1, busy, failover, c3, unrouted])
}

fn groups(report: &[TrafficRow]) -> Vec<Option<&str>> {
    report.iter().map(|row| row.group.as_deref()).collect()
}

fn keys(cdrs: &[Cdr]) -> Vec<(&str, i64)> {
    cdrs.iter()
        .map(|cdr| (cdr.call_id.as_str(), cdr.attempt))
        .collect()
}

ledger_test!(report_by_carrier_has_exact_figures, |store| {
    write_traffic(store).await;
    let report = store
        .traffic_report(FROM, TO, TrafficGrouping::Carrier)
        .await
        .unwrap();
    assert_eq!(
        report,
        vec![
            TrafficRow {
                group: Some("carrier-a".into()),
                attempts: 3,
                answered: 2,
                talk_ms: 90_250,
                billed_seconds: 91,
                revenue_micros: 1_820_000,
                tax_micros: 300_000,
                cost_micros: 750_000,
            },
            TrafficRow {
                group: Some("carrier-b".into()),
                attempts: 1,
                answered: 1,
                talk_ms: 90_000,
                billed_seconds: 90,
                revenue_micros: 1_800_000,
                tax_micros: 300_000,
                cost_micros: 900_000,
            },
            TrafficRow {
                group: None,
                attempts: 1,
                answered: 0,
                talk_ms: 0,
                billed_seconds: 0,
                revenue_micros: 0,
                tax_micros: 0,
                cost_micros: 0,
            },
        ]
    );
    let carrier_a = &report[0];
    assert_eq!(carrier_a.asr_percent(), Some(hundredths(6667)));
    // 45.125 rounds half away from zero, as billing rounds (bankers' would give 45.12).
    assert_eq!(carrier_a.acd_seconds(), Some(hundredths(4513)));
    assert_eq!(carrier_a.margin_micros(), 770_000);
    let carrier_b = &report[1];
    assert_eq!(carrier_b.asr_percent(), Some(hundredths(10000)));
    assert_eq!(carrier_b.acd_seconds(), Some(hundredths(9000)));
    assert_eq!(carrier_b.margin_micros(), 600_000);
    let unrouted = &report[2];
    assert_eq!(unrouted.asr_percent(), Some(Decimal::ZERO));
    assert_eq!(unrouted.acd_seconds(), None);
    assert_eq!(unrouted.margin_micros(), 0);
});

ledger_test!(report_by_access_number_and_by_account, |store| {
    let (first, tenth, _) = write_traffic(store).await;

    let by_access = store
        .traffic_report(FROM, TO, TrafficGrouping::AccessNumber)
        .await
        .unwrap();
    assert_eq!(
        groups(&by_access),
        vec![Some(ACCESS_MAIN), Some(ACCESS_OTHER), None]
    );
    let main = &by_access[0];
    assert_eq!(
        (
            main.attempts,
            main.answered,
            main.talk_ms,
            main.billed_seconds
        ),
        (3, 2, 150_000, 150)
    );
    assert_eq!(
        (main.revenue_micros, main.tax_micros, main.cost_micros),
        (3_000_000, 500_000, 1_400_000)
    );
    assert_eq!(main.margin_micros(), 1_100_000);
    assert_eq!(main.asr_percent(), Some(hundredths(6667)));
    assert_eq!(main.acd_seconds(), Some(hundredths(7500)));
    let other = &by_access[1];
    assert_eq!(
        (
            other.attempts,
            other.answered,
            other.talk_ms,
            other.billed_seconds
        ),
        (1, 1, 30_250, 31)
    );
    assert_eq!(other.acd_seconds(), Some(hundredths(3025)));
    assert_eq!(other.margin_micros(), 270_000);
    assert_eq!((by_access[2].attempts, by_access[2].answered), (1, 0));

    let by_account = store
        .traffic_report(FROM, TO, TrafficGrouping::Account)
        .await
        .unwrap();
    let (first_text, tenth_text) = (first.to_string(), tenth.to_string());
    assert_eq!(
        groups(&by_account),
        vec![Some(first_text.as_str()), Some(tenth_text.as_str()), None]
    );
    assert_eq!(
        by_account[0],
        TrafficRow {
            group: Some(first_text.clone()),
            attempts: 2,
            answered: 2,
            talk_ms: 90_250,
            billed_seconds: 91,
            revenue_micros: 1_820_000,
            tax_micros: 300_000,
            cost_micros: 750_000,
        }
    );
    let second = &by_account[1];
    assert_eq!(
        (
            second.attempts,
            second.answered,
            second.talk_ms,
            second.billed_seconds
        ),
        (2, 1, 90_000, 90)
    );
    assert_eq!(second.asr_percent(), Some(hundredths(5000)));
    assert_eq!(second.acd_seconds(), Some(hundredths(9000)));
    assert_eq!(second.margin_micros(), 600_000);
    assert_eq!(by_account[2].group, None);
    assert_eq!(by_account[2].attempts, 1);
});

ledger_test!(report_groups_are_in_byte_order_with_null_last, |store| {
    // A collation such as en_US would put "Zeta" after "alpha"; byte order puts it first.
    for (index, carrier) in ["alpha", "Zeta", "beta"].into_iter().enumerate() {
        let mut cdr = attempt(&format!("order-{index}"), 1, FROM + 1_000);
        cdr.carrier = Some(carrier.to_owned());
        store.write_cdr(&cdr, FROM).await.unwrap();
    }
    let mut unrouted = attempt("order-none", 1, FROM);
    unrouted.carrier = None;
    store.write_cdr(&unrouted, FROM).await.unwrap();
    let report = store
        .traffic_report(FROM, TO, TrafficGrouping::Carrier)
        .await
        .unwrap();
    assert_eq!(
        groups(&report),
        vec![Some("Zeta"), Some("alpha"), Some("beta"), None]
    );
});

ledger_test!(report_window_includes_from_and_excludes_to, |store| {
    let (first, _, _) = write_traffic(store).await;
    // Only "late" starts at TO, only "early" at FROM - 1.
    let late = store
        .traffic_report(TO, TO + 1, TrafficGrouping::Carrier)
        .await
        .unwrap();
    assert_eq!(groups(&late), vec![Some("carrier-a")]);
    assert_eq!(
        (
            late[0].attempts,
            late[0].revenue_micros,
            late[0].cost_micros
        ),
        (1, 7_000_000, 1_000_000)
    );
    let early = store
        .traffic_report(FROM - 1, FROM, TrafficGrouping::Account)
        .await
        .unwrap();
    assert_eq!(groups(&early), vec![Some(first.to_string().as_str())]);
    assert_eq!(early[0].revenue_micros, 9_000_000);
    // The whole day holds all seven attempts.
    let day = store
        .traffic_report(FROM - 1, TO + 1, TrafficGrouping::Carrier)
        .await
        .unwrap();
    let attempts: i64 = day.iter().map(|row| row.attempts).sum();
    assert_eq!(attempts, 7);
});

ledger_test!(empty_window_gives_an_empty_report, |store| {
    write_traffic(store).await;
    for grouping in [
        TrafficGrouping::Carrier,
        TrafficGrouping::AccessNumber,
        TrafficGrouping::Account,
    ] {
        for (from, to) in [(TO + 1, TO + 60_000), (FROM + 1, FROM + 1), (TO, FROM)] {
            let report = store.traffic_report(from, to, grouping).await.unwrap();
            assert!(report.is_empty(), "{grouping:?} [{from}, {to}): {report:?}");
        }
    }
    assert!(
        store
            .cdrs_between(TO + 1, TO + 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
});

ledger_test!(cdrs_between_orders_bounds_and_limits, |store| {
    let (_, _, expected) = write_traffic(store).await;
    let all = store.cdrs_between(FROM, TO, 100).await.unwrap();
    // Start time, then call id (c3 and c4 start together), then attempt.
    assert_eq!(
        keys(&all),
        vec![("c1", 1), ("c2", 1), ("c2", 2), ("c3", 1), ("c4", 1)]
    );
    assert_eq!(all, expected);
    assert!(!format!("{all:?}").contains("4930123456"));

    let first_two = store.cdrs_between(FROM, TO, 2).await.unwrap();
    assert_eq!(keys(&first_two), vec![("c1", 1), ("c2", 1)]);
    assert!(store.cdrs_between(FROM, TO, 0).await.unwrap().is_empty());

    // FROM + 15_000 is c2's failover (included); FROM + 20_000 is c3 and c4 (excluded).
    let middle = store
        .cdrs_between(FROM + 15_000, FROM + 20_000, 100)
        .await
        .unwrap();
    assert_eq!(keys(&middle), vec![("c2", 2)]);
    let at_to = store.cdrs_between(TO, TO + 1, 100).await.unwrap();
    assert_eq!(keys(&at_to), vec![("late", 1)]);
    let before = store.cdrs_between(FROM - 1, FROM, 100).await.unwrap();
    assert_eq!(keys(&before), vec![("early", 1)]);

    assert!(matches!(
        store.cdrs_between(FROM, TO, -1).await,
        Err(StoreError::InvalidArgument(_))
    ));
});

fn row(attempts: i64, answered: i64, talk_ms: i64) -> TrafficRow {
    TrafficRow {
        group: None,
        attempts,
        answered,
        talk_ms,
        billed_seconds: 0,
        revenue_micros: 0,
        tax_micros: 0,
        cost_micros: 0,
    }
}

#[test]
fn asr_and_acd_are_none_without_attempts_or_answers() {
    let nothing = row(0, 0, 0);
    assert_eq!(nothing.asr_percent(), None);
    assert_eq!(nothing.acd_seconds(), None);
    assert_eq!(nothing.margin_micros(), 0);

    let unanswered = row(3, 0, 0);
    assert_eq!(unanswered.asr_percent(), Some(Decimal::ZERO));
    assert_eq!(unanswered.acd_seconds(), None);
}

#[test]
fn asr_and_acd_round_to_two_places_half_away_from_zero() {
    assert_eq!(row(3, 1, 1_000).asr_percent(), Some(hundredths(3333)));
    assert_eq!(row(3, 2, 1_000).asr_percent(), Some(hundredths(6667)));
    // 100 / 32 = 3.125 and 0.125 s: midpoints, rounded up.
    assert_eq!(row(32, 1, 125).asr_percent(), Some(hundredths(313)));
    assert_eq!(row(32, 1, 125).acd_seconds(), Some(hundredths(13)));
    // 10 s over 3 answers, 3.3333... s.
    assert_eq!(row(3, 3, 10_000).acd_seconds(), Some(hundredths(333)));
    assert_eq!(row(1, 1, 0).acd_seconds(), Some(Decimal::ZERO));
}

#[test]
fn margin_subtracts_tax_and_cost() {
    let mut loss = row(1, 1, 60_000);
    loss.revenue_micros = 1_000_000;
    loss.tax_micros = 190_000;
    loss.cost_micros = 900_000;
    assert_eq!(loss.margin_micros(), -90_000);
    loss.revenue_micros = i64::MIN;
    assert_eq!(loss.margin_micros(), i64::MIN);
}

// Issue 15: the console's CDR search pages newest first with a keyset cursor, on both
// backends, and filters by account, carrier, cause and destination prefix.
ledger_test!(cdr_search_pages_by_keyset_and_filters, |store| {
    let accounts = ten_accounts(store).await;
    for index in 0..250i64 {
        let mut cdr = attempt(&format!("search-{index}"), 1, FROM + index * 1_000);
        cdr.account_id = Some(accounts[usize::try_from(index % 2).unwrap()].id);
        if index % 5 == 0 {
            cdr.carrier = Some("carrier-b".into());
            cdr.disconnect_cause = Some("operator".into());
        }
        if index % 10 == 0 {
            cdr.destination = Pii::new("4420790000".into());
        }
        store.write_cdr(&cdr, FROM).await.unwrap();
    }
    let all = CdrFilter {
        from_ms: FROM,
        to_ms: TO,
        ..CdrFilter::default()
    };
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.search_cdrs(&all, before, 100).await.unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|(cursor, _)| *cursor);
        seen.extend(page.into_iter().map(|(_, cdr)| cdr.start_ms));
    }
    assert_eq!(seen.len(), 250);
    assert!(
        seen.windows(2).all(|pair| pair[0] > pair[1]),
        "newest first, no repeat"
    );
    let narrow = CdrFilter {
        account_id: Some(accounts[0].id),
        carrier: Some("carrier-b".into()),
        cause: Some("operator".into()),
        destination_prefix: Some("44".into()),
        ..all.clone()
    };
    let found = store.search_cdrs(&narrow, None, 100).await.unwrap();
    // index % 10 == 0: even (account 0), carrier-b, operator, 44...: 25 of them.
    assert_eq!(found.len(), 25);
    assert!(store.search_cdrs(&all, None, -1).await.is_err());
});
