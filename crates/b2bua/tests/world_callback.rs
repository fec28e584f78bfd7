//! Callback on the virtual clock (issue 21): the ways a call back can go, each ending with
//! the switch's tables empty. The caller rings access number 100 made a callback line; the
//! call back goes to the world's carriers (the route for every number).

#![allow(clippy::unwrap_used)]

mod world;

use std::path::Path;
use std::time::Duration;

use talktime_b2bua::config::Config;
use world::{Carrier, World, address};

const MS: Duration = Duration::from_millis(1);
/// The caller's number: the world's tariff rates `1...` at 0.60 a minute, per second.
const CALLER: &str = "15551230001";

fn callback_world(carrier: Carrier, registered: bool) -> World {
    let carrier_address = address("127.0.0.2:5070");
    // The world's challenging carrier wants these credentials.
    let credentials = match carrier {
        Carrier::Challenges { .. } => "username = \"talktime\"\npassword = \"secret\"\n",
        _ => "",
    };
    let text = format!(
        "[[access_numbers]]\nnumber = \"100\"\nlanguages = [\"en\"]\ndial_plan = \"world\"\n\
         callback = true\n\n\
         [callback]\ndelay_ms = 2000\nring_s = 10\n\n\
         [[carriers]]\nname = \"phones\"\nhost = \"127.0.0.2\"\nport = 5070\n\
         options_interval_ms = 0\ninvite_timeout_ms = 2000\n{credentials}\n\
         [[dial_plans]]\nname = \"world\"\n\n[[dial_plans.routes]]\nprefix = \"\"\n\
         mode = \"priority\"\ncarriers = [{{ name = \"phones\", priority = 0 }}]\n"
    );
    let config = Config::from_file_text(&text, Path::new("world.toml")).unwrap();
    let listed = [("phones".to_owned(), carrier_address)];
    let mut world = World::with_config(config, &[("phones", carrier)], &listed, 10_000_000);
    world.phone.number = Some(CALLER.into());
    if registered {
        world.ledger.caller_ids.push(CALLER.into());
    }
    world.call(&[]);
    world
}

fn caller_leg_settled(world: &World) -> (u64, i64, talktime_billing::Cdr) {
    let settled: Vec<_> = world
        .ledger
        .settled
        .iter()
        .filter(|(key, ..)| key.ends_with("#0"))
        .collect();
    assert_eq!(settled.len(), 1, "{:?}", world.ledger.settled);
    let (_, answered_ms, charged, cdrs) = settled[0];
    assert_eq!(cdrs.len(), 1, "{cdrs:?}");
    (*answered_ms, *charged, cdrs[0].clone())
}

#[test]
fn an_unregistered_caller_is_refused_and_never_called_back() {
    let mut world = callback_world(Carrier::Answers { ring: 500 * MS }, false);
    world.run_for(Duration::from_secs(30));
    assert_eq!(world.phone.final_status, Some(480));
    assert!(world.phone.answered_at.is_none());
    assert!(world.carriers[0].invites.is_empty(), "nobody was called");
    assert!(world.ledger.authorizations.is_empty());
    world.assert_idle();
}

#[test]
fn a_busy_phone_is_not_called_again_and_its_leg_costs_nothing() {
    let mut world = callback_world(Carrier::Refuses { status: 486 }, true);
    world.run_for(Duration::from_secs(30));
    assert_eq!(world.phone.final_status, Some(480));
    let invites = &world.carriers[0].invites;
    assert_eq!(invites.len(), 1, "one INVITE, not retried after busy");
    assert!(
        invites[0].0 >= Duration::from_secs(2),
        "called back after the delay: {:?}",
        invites[0].0
    );
    let (answered_ms, charged, cdr) = caller_leg_settled(&world);
    assert_eq!((answered_ms, charged), (0, 0));
    assert_eq!(cdr.attempt, 0);
    assert_eq!(cdr.disconnect_cause.as_deref(), Some("busy"));
    assert_eq!(cdr.sip_code, Some(486));
    assert_eq!(cdr.destination.expose(), "+15551230001");
    world.assert_idle();
}

#[test]
fn a_phone_that_never_answers_is_given_up_after_the_ring_time() {
    let mut world = callback_world(Carrier::Silent, true);
    world.run_for(Duration::from_secs(60));
    assert!(!world.carriers[0].invites.is_empty());
    let (answered_ms, charged, cdr) = caller_leg_settled(&world);
    assert_eq!((answered_ms, charged), (0, 0));
    assert_eq!(cdr.disconnect_cause.as_deref(), Some("no_answer"));
    world.assert_idle();
}

#[test]
fn an_answered_call_back_runs_the_ivr_and_its_leg_is_billed_when_it_ends() {
    let mut world = callback_world(Carrier::Answers { ring: 1000 * MS }, true);
    world.upload_prompt("en/welcome");
    world.upload_prompt("en/enter_destination");
    // Nobody keys a number: the IVR asks, gives up and hangs up the leg it placed.
    world.run_for(Duration::from_secs(120));
    let carrier = &world.carriers[0];
    let answered = carrier.answered_at.expect("the phone answered");
    let ended = carrier
        .bye_received_at
        .expect("the switch hung up the call back");
    let (answered_ms, charged, cdr) = caller_leg_settled(&world);
    let up_ms = u64::try_from((ended - answered).as_millis()).unwrap();
    assert!(
        answered_ms.abs_diff(up_ms) <= 100,
        "billed {answered_ms} ms of {up_ms} ms"
    );
    // 0.60 a minute per second: 10,000 micros a second begun.
    assert_eq!(
        charged,
        i64::try_from(answered_ms.div_ceil(1000)).unwrap() * 10_000
    );
    assert_eq!(cdr.carrier.as_deref(), Some("phones"));
    assert!(cdr.answer_ms.is_some());
    let played = world
        .media
        .values()
        .flatten()
        .filter(|c| *c == "play")
        .count();
    assert!(
        played >= 2,
        "welcome and the destination prompt: {:?}",
        world.media
    );
    world.assert_idle();
}

#[test]
fn a_carrier_that_challenges_the_call_back_gets_it_with_credentials() {
    let mut world = callback_world(Carrier::Challenges { ring: 500 * MS }, true);
    world.run_for(Duration::from_secs(120));
    let invites = &world.carriers[0].invites;
    assert_eq!(
        invites.len(),
        2,
        "challenged once, then sent with credentials"
    );
    assert!(invites[1].1.headers.get("Proxy-Authorization").is_some());
    assert!(world.carriers[0].answered_at.is_some());
    let (answered_ms, charged, _) = caller_leg_settled(&world);
    assert!(answered_ms > 0 && charged > 0);
    world.assert_idle();
}
