//! The scenarios of the SIPp suites (crates/talktime/tests/prepaid_calls.rs, routing_live.rs)
//! on the sans-IO switch and a virtual clock: each runs in milliseconds, with the timings
//! asserted to the millisecond, and several under loss, duplication and delay.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

mod world;

use std::time::Duration;

use world::{CallerAction, Carrier, DESTINATION, Network, PIN, World};

const MS: Duration = Duration::from_millis(1);

/// A PIN call keyed at a human pace: the PIN 1.2 s after the answer, 450 ms between keys,
/// a pause, then the destination.
fn pin_call(destination: &str) -> Vec<(Duration, CallerAction)> {
    let mut script = World::keys(&format!("{PIN}#"), 1200 * MS, 450 * MS);
    script.extend(World::keys(&format!("{destination}#"), 2500 * MS, 520 * MS));
    script
}

/// $0.60 a minute per second: 60 s of credit is $0.60.
const SIXTY_SECONDS: i64 = 600_000;

#[test]
fn a_pin_call_at_a_human_pace_is_cut_at_its_limit_and_billed_once() {
    let mut world = World::new(
        &[("first", Carrier::Answers { ring: 3000 * MS })],
        SIXTY_SECONDS,
        "",
    );
    world.call(&pin_call(DESTINATION));
    world.run_for(Duration::from_secs(300));

    let carrier = &world.carriers[0];
    assert_eq!(carrier.invites.len(), 1);
    let answered = carrier.answered_at.expect("the carrier answered");
    let cut = carrier.bye_received_at.expect("the carrier got a BYE");
    // Answer to BYE is the limit, to the millisecond (the network has no delay here).
    assert_eq!(cut - answered, Duration::from_secs(60), "cut at the limit");
    let caller_bye = world.phone.bye_received_at.expect("the caller got a BYE");
    assert!(caller_bye >= cut, "the caller's BYE follows the farewell");
    let (answered_ms, charged) = world.only_settlement();
    assert_eq!(answered_ms, 60_000);
    assert_eq!(charged, SIXTY_SECONDS, "billed exactly the credit");
    assert_eq!(world.ledger.balance_micros, 0);
    let cdrs = world.cdrs();
    assert_eq!(cdrs.len(), 1);
    assert_eq!(
        cdrs[0].disconnect_cause.as_deref(),
        Some("credit_exhausted")
    );
    world.assert_idle();
}

#[test]
fn the_same_call_survives_loss_duplication_and_delay() {
    for (loss_percent, duplicate) in [(0, true), (10, false), (20, false), (30, true)] {
        let mut world = World::new(
            &[("first", Carrier::Answers { ring: 2000 * MS })],
            SIXTY_SECONDS,
            "",
        );
        world.network = Network {
            delay: 40 * MS,
            loss_percent,
            duplicate,
        };
        world.call(&pin_call(DESTINATION));
        world.run_for(Duration::from_secs(400));
        let context = format!("loss {loss_percent} %, duplicate {duplicate}");
        // Whatever got lost or repeated, the call is answered, cut at its limit and charged
        // once (the ledger panics on a second settle of one reservation).
        let (answered_ms, charged) = world.only_settlement();
        assert_eq!(answered_ms, 60_000, "{context}");
        assert_eq!(charged, SIXTY_SECONDS, "{context}");
        assert!(
            world.carriers[0].bye_received_at.is_some(),
            "{context}: the carrier leg was ended"
        );
        assert!(
            world.phone.bye_received_at.is_some(),
            "{context}: the caller leg was ended"
        );
        world.assert_idle();
    }
}

#[test]
fn three_wrong_pins_end_the_call_without_an_authorization() {
    let mut world = World::new(
        &[("first", Carrier::Answers { ring: MS })],
        SIXTY_SECONDS,
        "",
    );
    let mut script = Vec::new();
    for _ in 0..3 {
        script.extend(World::keys("9999999999#", 1500 * MS, 400 * MS));
    }
    world.call(&script);
    world.run_for(Duration::from_secs(120));
    assert_eq!(world.ledger.pin_failures, 3);
    assert!(world.ledger.authorizations.is_empty());
    assert!(
        world.carriers[0].invites.is_empty(),
        "no carrier was called"
    );
    assert!(world.phone.bye_received_at.is_some(), "the switch hung up");
    let cdrs = world.cdrs();
    assert!(cdrs.iter().all(|cdr| cdr.total_micros == 0), "{cdrs:?}");
    world.assert_idle();
}

#[test]
fn a_503_fails_over_to_the_next_carrier_at_once() {
    let mut world = World::new(
        &[
            ("first", Carrier::Refuses { status: 503 }),
            ("second", Carrier::Answers { ring: 1000 * MS }),
        ],
        SIXTY_SECONDS,
        "",
    );
    world.call(&pin_call(DESTINATION));
    world.run_for(Duration::from_secs(300));
    let refused_at = world.carriers[0].invites[0].0;
    let second_at = world.carriers[1].invites[0].0;
    // The 503 comes 50 ms after the INVITE; the next INVITE follows it with no wait.
    assert_eq!(second_at - refused_at, 50 * MS);
    let cdrs = world.cdrs();
    assert_eq!(cdrs.len(), 2, "{cdrs:?}");
    assert_eq!(cdrs[0].carrier.as_deref(), Some("first"));
    assert_eq!(cdrs[0].sip_code, Some(503));
    assert_eq!(cdrs[1].carrier.as_deref(), Some("second"));
    assert_eq!(
        world.ledger.balance_micros, 0,
        "the second carrier's call is billed"
    );
    world.assert_idle();
}

#[test]
fn a_silent_carrier_is_given_up_at_the_invite_timeout() {
    let mut world = World::new(
        &[
            ("silent", Carrier::Silent),
            ("second", Carrier::Answers { ring: 1000 * MS }),
        ],
        SIXTY_SECONDS,
        "",
    );
    world.call(&pin_call(DESTINATION));
    world.run_for(Duration::from_secs(300));
    let first = world.carriers[0].invites[0].0;
    let second = world.carriers[1].invites[0].0;
    assert_eq!(second - first, 2000 * MS, "invite_timeout_ms = 2000");
    assert_eq!(
        world.carriers[0].cancels, 0,
        "no provisional response: nothing to CANCEL yet"
    );
    let cdrs = world.cdrs();
    assert_eq!(cdrs[0].sip_code, Some(408), "{cdrs:?}");
    assert_eq!(world.only_settlement().1, SIXTY_SECONDS);
    world.assert_idle();
}

#[test]
fn a_busy_destination_returns_to_destination_entry_and_the_second_number_connects() {
    let mut world = World::new(
        &[(
            "first",
            Carrier::RefusesFirst {
                status: 486,
                ring: 500 * MS,
            },
        )],
        SIXTY_SECONDS,
        "",
    );
    let mut script = pin_call(DESTINATION);
    script.extend(World::keys("12125550199#", 6000 * MS, 500 * MS));
    world.call(&script);
    world.run_for(Duration::from_secs(300));
    let invites = &world.carriers[0].invites;
    assert_eq!(invites.len(), 2, "a second destination was dialled");
    assert_eq!(invites[1].1.uri.user(), Some("12125550199"));
    assert_eq!(world.ledger.settled.len(), 2, "one settle per attempt");
    let busy = &world.ledger.settled[0];
    assert_eq!(busy.2, 0, "the busy attempt costs nothing");
    assert_eq!(world.ledger.settled[1].2, SIXTY_SECONDS);
    world.assert_idle();
}

#[test]
fn a_digest_challenge_is_answered_with_the_carriers_credentials() {
    let mut world = World::new(
        &[("secure", Carrier::Challenges { ring: 500 * MS })],
        SIXTY_SECONDS,
        "",
    );
    world.call(&pin_call(DESTINATION));
    world.run_for(Duration::from_secs(300));
    let invites = &world.carriers[0].invites;
    assert_eq!(invites.len(), 2);
    let credentials = invites[1].1.headers.get("Proxy-Authorization").unwrap();
    assert!(
        credentials.contains("username=\"talktime\""),
        "{credentials}"
    );
    assert!(credentials.contains("nonce=\"abc123\""), "{credentials}");
    assert_eq!(world.only_settlement().1, SIXTY_SECONDS);
    world.assert_idle();
}

#[test]
fn early_media_is_not_billed_and_the_limit_starts_at_answer() {
    let mut world = World::new(
        &[(
            "first",
            Carrier::EarlyMediaThenAnswers { ring: 10_000 * MS },
        )],
        SIXTY_SECONDS,
        "",
    );
    world.call(&pin_call(DESTINATION));
    world.run_for(Duration::from_secs(300));
    let carrier = &world.carriers[0];
    let invited = carrier.invites[0].0;
    let answered = carrier.answered_at.unwrap();
    assert_eq!(answered - invited, 10_000 * MS);
    assert_eq!(
        carrier.bye_received_at.unwrap() - answered,
        Duration::from_secs(60)
    );
    assert_eq!(world.only_settlement(), (60_000, SIXTY_SECONDS));
    world.assert_idle();
}

#[test]
fn a_hold_re_invite_is_answered_and_the_call_still_ends_at_its_limit() {
    let mut world = World::new(
        &[("first", Carrier::Answers { ring: 1000 * MS })],
        SIXTY_SECONDS,
        "",
    );
    let mut script = pin_call(DESTINATION);
    script.push((20_000 * MS, CallerAction::ReInvite { hold: true }));
    script.push((5_000 * MS, CallerAction::ReInvite { hold: false }));
    world.call(&script);
    world.run_for(Duration::from_secs(300));
    let reinvite_answers: Vec<u16> = world
        .phone
        .responses
        .iter()
        .filter(|(_, status, method)| *method == talktime_sip::Method::Invite && *status >= 200)
        .map(|(_, status, _)| *status)
        .collect();
    // The first INVITE's 200 (perhaps retransmitted), then one 200 per re-INVITE.
    assert!(
        reinvite_answers
            .iter()
            .filter(|status| **status == 200)
            .count()
            >= 3,
        "{reinvite_answers:?}"
    );
    let carrier = &world.carriers[0];
    assert_eq!(
        carrier.bye_received_at.unwrap() - carrier.answered_at.unwrap(),
        Duration::from_secs(60)
    );
    world.assert_idle();
}

#[test]
fn an_unrefreshed_session_timer_ends_the_call_with_its_own_cause() {
    let mut world = World::new(
        &[("first", Carrier::Answers { ring: 1000 * MS })],
        100 * SIXTY_SECONDS,
        "",
    );
    world.call_with(&pin_call(DESTINATION), Some(90));
    world.run_for(Duration::from_secs(600));
    let answered_ivr = world.phone.answered_at.unwrap();
    let caller_bye = world
        .phone
        .bye_received_at
        .expect("the switch ended the call");
    assert_eq!(caller_bye - answered_ivr, Duration::from_secs(90));
    assert!(world.carriers[0].bye_received_at.is_some());
    let cdrs = world.cdrs();
    assert_eq!(
        cdrs.last().unwrap().disconnect_cause.as_deref(),
        Some("session_expired"),
        "{cdrs:?}"
    );
    world.assert_idle();
}

#[test]
fn a_registering_carrier_is_registered_at_start_and_refreshed_at_half_its_expiry() {
    let config = world::config(
        &[(
            "registered",
            world::address("127.0.0.2:5070"),
            "username = \"talktime\"\npassword = \"secret\"\nregister_expires_s = 60",
        )],
        "",
    );
    let listed = [("registered".to_owned(), world::address("127.0.0.2:5070"))];
    let mut world = World::with_config(
        config,
        &[("registered", Carrier::Answers { ring: MS })],
        &listed,
        SIXTY_SECONDS,
    );
    world.run_for(Duration::from_secs(100));
    let registers: Vec<Duration> = world.carriers[0]
        .registers
        .iter()
        .map(|(at, _)| *at)
        .collect();
    // At start, then every 30 s (half the 60 s granted).
    assert_eq!(
        registers,
        vec![
            Duration::ZERO,
            Duration::from_secs(30),
            Duration::from_secs(60),
            Duration::from_secs(90)
        ]
    );
}

#[test]
fn a_caller_hanging_up_in_the_ivr_pays_nothing_and_leaves_nothing() {
    let mut world = World::new(
        &[("first", Carrier::Answers { ring: MS })],
        SIXTY_SECONDS,
        "",
    );
    let mut script = World::keys("12345", 1000 * MS, 400 * MS);
    script.push((300 * MS, CallerAction::HangUp));
    world.call(&script);
    world.run_for(Duration::from_secs(60));
    assert!(world.ledger.authorizations.is_empty());
    assert!(world.carriers[0].invites.is_empty());
    assert_eq!(world.ledger.balance_micros, SIXTY_SECONDS);
    world.assert_idle();
    let media = world.media.values().next().unwrap();
    assert_eq!(media.first().map(String::as_str), Some("open"));
    assert_eq!(media.last().map(String::as_str), Some("close"));
}

#[test]
fn a_registered_caller_id_from_a_trusted_peer_skips_the_pin() {
    let mut world = World::new(
        &[("first", Carrier::Answers { ring: 1000 * MS })],
        SIXTY_SECONDS,
        "",
    );
    world.ledger.caller_ids.push("447700900123".into());
    world.phone.number = Some("+447700900123".into());
    // Only the destination: the caller ID authenticated the call.
    world.call(&World::keys(
        &format!("{DESTINATION}#"),
        2000 * MS,
        500 * MS,
    ));
    world.run_for(Duration::from_secs(300));
    assert_eq!(world.ledger.pin_failures, 0);
    assert_eq!(world.carriers[0].invites.len(), 1);
    let carrier = &world.carriers[0];
    assert_eq!(
        carrier.bye_received_at.unwrap() - carrier.answered_at.unwrap(),
        Duration::from_secs(60)
    );
    assert_eq!(world.only_settlement(), (60_000, SIXTY_SECONDS));
    world.assert_idle();
}

#[test]
fn the_same_caller_id_from_an_untrusted_peer_is_asked_for_the_pin() {
    let untrusted =
        "[[peers]]\naddress = \"127.0.0.0/8\"\naccess = true\ntrusted_caller_id = false\n";
    let mut world = World::new(
        &[("first", Carrier::Answers { ring: 1000 * MS })],
        SIXTY_SECONDS,
        untrusted,
    );
    world.ledger.caller_ids.push("447700900123".into());
    world.phone.number = Some("+447700900123".into());
    world.call(&pin_call(DESTINATION));
    world.run_for(Duration::from_secs(300));
    // The PIN was asked: the first keys were taken as a PIN, the next as the destination.
    let invites = &world.carriers[0].invites;
    assert_eq!(invites.len(), 1);
    assert_eq!(invites[0].1.uri.user(), Some(DESTINATION));
    assert_eq!(world.only_settlement(), (60_000, SIXTY_SECONDS));
    world.assert_idle();
}

/// Wrong PINs above the switch-wide alarm rate hold every PIN answer back (issue 20): the
/// same call keyed the same way hears what follows its right PIN the delay later once the
/// alarm is on, and still connects.
#[test]
fn pin_answers_wait_while_wrong_pins_are_above_the_alarm_rate() {
    let accepted_at = |extra: &str| {
        let mut world = World::new(
            &[("first", Carrier::Answers { ring: MS })],
            SIXTY_SECONDS,
            extra,
        );
        world.upload_prompt("en/enter_destination");
        let mut script = Vec::new();
        for _ in 0..2 {
            script.extend(World::keys("9999999999#", 1500 * MS, 400 * MS));
        }
        script.extend(World::keys(&format!("{PIN}#"), 1200 * MS, 450 * MS));
        // The caller waits for the destination prompt as a person would.
        script.extend(World::keys(&format!("{DESTINATION}#"), 9000 * MS, 450 * MS));
        world.call(&script);
        world.run_for(Duration::from_secs(120));
        assert_eq!(world.ledger.pin_failures, 2);
        assert_eq!(world.carriers[0].invites.len(), 1, "{extra}");
        let play = world.media_times.iter().find(|(_, name)| name == "play");
        play.map(|(at, _)| *at).expect("a prompt after the PIN")
    };
    let calm = accepted_at("[alarms]\npin_failures_per_minute = 0\n");
    let alarmed =
        accepted_at("[alarms]\npin_failures_per_minute = 2\npin_answer_delay_ms = 4000\n");
    assert_eq!(alarmed - calm, Duration::from_secs(4));
}

#[test]
fn rtp_ports_another_program_holds_are_set_aside_and_the_call_answered_on_others() {
    let world = || {
        World::new(
            &[("first", Carrier::Answers { ring: 3000 * MS })],
            SIXTY_SECONDS,
            "",
        )
    };
    let mut free = world();
    free.call(&pin_call(DESTINATION));
    free.run_for(Duration::from_secs(300));
    let drawn = free.opened_ports[0];
    assert_eq!(free.phone.answer_port, Some(drawn[0]));

    // The same call again (same seed, same draw), the caller's port of that draw held by
    // another program: the switch answers on other ports, and the call goes as before.
    let mut busy = world();
    busy.busy_ports.insert(drawn[0]);
    busy.call(&pin_call(DESTINATION));
    busy.run_for(Duration::from_secs(300));
    assert_eq!(busy.opened_ports.len(), 2, "{:?}", busy.opened_ports);
    assert_eq!(busy.opened_ports[0], drawn);
    let moved = busy.opened_ports[1];
    assert!(!moved.contains(&drawn[0]), "{moved:?}");
    assert_eq!(
        busy.phone.answer_port,
        Some(moved[0]),
        "the answer names the ports that were bound"
    );
    assert_eq!(busy.phone.final_status, Some(200));
    let (answered_ms, charged) = busy.only_settlement();
    assert_eq!(answered_ms, 60_000);
    assert_eq!(charged, SIXTY_SECONDS);
    busy.assert_idle();
}
