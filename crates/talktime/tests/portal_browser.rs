//! The customer portal (issue 22) in a real browser (Debian's chromium through chromedriver),
//! against the running switch: a card holder who made a SIPp call chooses a password with the
//! card's PIN, sees the balance and the call with its cost (the CDR's), recharges with a
//! voucher (the ledger's line on the page and in the store; the same code again credits
//! nothing), logs out and in again; another card's call is "Not found"; the card cannot be
//! claimed twice; a pinless customer logs in with the account number and the password the
//! operator set with the CLI; the operator's message to every customer is on the page, one to
//! a reseller's customers is not.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::assert_sipp_ok;
use common::baresip::Baresip;
use common::browser::Browser;
use common::calls::{answering_carrier, call_and_hang_up, start};
use common::prepaid::{self, ConfigFile};
use talktime_store::format_micros;

const PIN: &str = "4104104101";
const OTHER_PIN: &str = "5205205202";
const PASSWORD: &str = "correct horse battery";

/// A PIN call to the US through the answering carrier, hung up by the caller after a few
/// seconds of talk; its call id.
fn pin_call(switch: &common::Switch, dir: &std::path::Path, pin: &str) -> String {
    let pin_keys = format!("{pin}#");
    let script = [
        (Duration::from_millis(2000), pin_keys.as_str()),
        (Duration::from_millis(5600), "0015551234567#"),
    ];
    let before = switch.call_ids().len();
    let output = call_and_hang_up(switch, dir, &script, Duration::from_secs(4));
    assert_sipp_ok(&output, switch, "a card holder's call");
    let ids = switch.call_ids();
    assert_eq!(ids.len(), before + 1, "one new call");
    ids.last().unwrap().clone()
}

fn curl_status(args: &[&str]) -> u16 {
    let output = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// Waits for the next page to hold `wanted` (the page before it does not), then checks that
/// `css` is where it is said.
fn text_says(browser: &Browser, css: &str, wanted: &str) {
    browser.until(wanted, |browser| browser.source().contains(wanted));
    let text = browser.text(css);
    assert!(text.contains(wanted), "{css}: {text}");
}

fn url_ends(browser: &Browser, wanted: &str) {
    browser.until(wanted, |browser| browser.url().ends_with(wanted));
}

fn wait_for_balance(browser: &Browser) -> String {
    browser
        .wait_for("#balance", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no balance on the page:\n{}", browser.source()));
    browser.text("#balance")
}

#[test]
fn a_card_holder_claims_the_portal_sees_the_call_and_its_cost_and_recharges_with_a_voucher() {
    let dir = prepaid::data_dir("portal");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let account = prepaid::card(&dir, PIN, 2_000_000, 0);
    prepaid::card(&dir, OTHER_PIN, 2_000_000, 0);
    let csv = common::cli(
        &dir,
        &[
            "vouchers", "generate", "--name", "shop", "--count", "3", "--value", "5.00",
        ],
    );
    let codes: Vec<String> = csv
        .lines()
        .skip(1)
        .filter_map(|line| line.split(',').nth(1).map(str::to_owned))
        .collect();
    assert_eq!(codes.len(), 3, "{csv}");
    let code = codes[0].clone();
    // The board: one message to everyone, one to a reseller's customers only.
    common::cli(&dir, &["resellers", "add", "shop"]);
    common::cli(
        &dir,
        &[
            "messages",
            "post",
            "--title",
            "Shop news",
            "--body",
            "Open on Sundays.",
            "--reseller",
            "shop",
        ],
    );
    let carrier = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("us", &carrier.address())
            .routes(&[("", &["us"])]),
    );
    let mine = pin_call(&switch, &dir, PIN);
    let theirs = pin_call(&switch, &dir, OTHER_PIN);
    let cdr = prepaid::wait_for_cdrs(&dir, &format!("{mine}#1"), 1).remove(0);
    assert!(cdr.total_micros > 0, "the call cost something: {cdr:?}");
    prepaid::wait_for_cdrs(&dir, &format!("{theirs}#1"), 1);
    let portal = format!("http://{}/portal", switch.admin);

    // Staff make the promotion and the news on the console: 10 % more on one recharge, for
    // the first customer who comes; one message to everyone (the shop's went by the CLI).
    let staff = Browser::start();
    let site = format!("http://{}", switch.admin);
    let admin_password = std::fs::read_to_string(dir.join("admin.password")).unwrap();
    staff.log_in(&site, "admin", admin_password.trim());
    staff.go(&format!("{site}/console/coupons"));
    staff.type_into("#coupon-code", "both");
    staff.type_into("#coupon-percent", "10");
    staff.type_into("#coupon-amount", "1.00");
    staff.click("#add-coupon");
    text_says(&staff, "#error", "a share or an amount");
    staff.type_into("#coupon-code", "welcome10");
    staff.type_into("#coupon-percent", "10");
    staff.clear("#coupon-max-uses");
    staff.type_into("#coupon-max-uses", "1");
    staff.click("#add-coupon");
    text_says(&staff, "#coupons", "WELCOME10");
    assert!(
        staff.text("#coupons").contains("0 of 1"),
        "{}",
        staff.text("#coupons")
    );
    staff.go(&format!("{site}/console/messages"));
    staff.type_into("#message-title", "New rates");
    staff.type_into("#message-body", "Mexico <cheaper> from today.");
    staff.click("#post-message");
    text_says(&staff, "#messages", "from today.");
    assert!(
        staff
            .text("#messages")
            .contains("Mexico <cheaper> from today.")
    );
    assert!(staff.text("#messages").contains("every customer"));
    assert!(
        staff.text("#messages").contains("shop"),
        "the CLI's message is listed"
    );
    // A message posted by mistake is removed (the newest is the first row).
    staff.type_into("#message-title", "Posted by mistake");
    staff.type_into("#message-body", "Ignore this.");
    staff.click("#post-message");
    text_says(&staff, "#messages", "Posted by mistake");
    staff.click("tr.message button");
    staff.until("the message is removed", |staff| {
        !staff.source().contains("Posted by mistake")
    });
    assert!(staff.text("#messages").contains("New rates"));

    let browser = Browser::start();
    // Nothing inside without a session: to the login page.
    browser.go(&portal);
    assert!(
        browser.url().ends_with("/portal/login"),
        "{}",
        browser.url()
    );

    // A PIN no card has claims nothing.
    browser.click("#claim");
    browser.type_into("#pin", "9999999999");
    browser.type_into("#password", PASSWORD);
    browser.type_into("#repeat", PASSWORD);
    browser.click("#submit");
    text_says(&browser, "#error", "No card has this PIN");

    // The card's PIN and a password of the holder's own: in, with the balance and the call.
    browser.clear("#pin");
    browser.type_into("#pin", PIN);
    browser.type_into("#password", PASSWORD);
    browser.type_into("#repeat", PASSWORD);
    browser.click("#submit");
    let balance = wait_for_balance(&browser);
    assert_eq!(balance, format_micros(2_000_000 - cdr.total_micros));
    assert_eq!(
        browser.all("tr.call").len(),
        1,
        "only this card's call: {}",
        browser.source()
    );
    let row = browser.text("tr.call");
    assert!(row.contains(&format_micros(cdr.total_micros)), "{row}");
    // The message to everyone, its text escaped; not the reseller's customers' one.
    let news = browser.text("#messages");
    assert!(news.contains("Mexico <cheaper> from today."), "{news}");
    assert!(!news.contains("Shop news"), "{news}");
    browser.screenshot("portal-home");

    // The call's page: the CDR's cost; the other card's call is not there for this customer.
    browser.click("tr.call a");
    browser.until("the call's page", |browser| {
        browser.url().contains("/portal/calls/")
    });
    text_says(
        &browser,
        "tr.attempt td.cost",
        &format_micros(cdr.total_micros),
    );
    browser.go(&format!("{portal}/calls/{theirs}"));
    assert!(
        browser.source().contains("Not found"),
        "{}",
        browser.source()
    );

    // A voucher: credited once, shown as a ledger line; the same code again credits nothing.
    browser.go(&portal);
    browser.type_into("#code", &code);
    browser.click("#recharge");
    text_says(&browser, "#notice", "Recharged 5");
    let recharged = 7_000_000 - cdr.total_micros;
    assert_eq!(wait_for_balance(&browser), format_micros(recharged));
    assert!(
        browser.text("#ledger").contains("recharge"),
        "{}",
        browser.source()
    );
    browser.type_into("#code", &code);
    browser.click("#recharge");
    text_says(&browser, "#notice", "has been used");
    assert_eq!(wait_for_balance(&browser), format_micros(recharged));
    assert_eq!(prepaid::balance(&dir, account), recharged, "credited once");

    // A voucher with the coupon: 5 and 10 % of it, two ledger lines.
    browser.type_into("#code", &codes[1]);
    browser.type_into("#coupon", "Welcome10");
    browser.click("#recharge");
    text_says(
        &browser,
        "#notice",
        "Recharged 5 and 0.5 more with the coupon",
    );
    let recharged = recharged + 5_500_000;
    assert_eq!(wait_for_balance(&browser), format_micros(recharged));
    let ledger = browser.text("#ledger");
    assert!(ledger.contains("promotion 0.5"), "{ledger}");
    // The coupon's one use is taken: refused, and the voucher it came with is not used.
    browser.type_into("#code", &codes[2]);
    browser.type_into("#coupon", "WELCOME10");
    browser.click("#recharge");
    text_says(&browser, "#notice", "used as often as it may");
    assert_eq!(wait_for_balance(&browser), format_micros(recharged));
    browser.type_into("#code", &codes[2]);
    browser.click("#recharge");
    text_says(&browser, "#notice", "Recharged 5.");
    let recharged = recharged + 5_000_000;
    assert_eq!(wait_for_balance(&browser), format_micros(recharged));
    assert_eq!(prepaid::balance(&dir, account), recharged, "each line once");
    let uses = common::cli(&dir, &["coupons", "list"]);
    assert!(uses.contains("\"uses\": 1"), "{uses}");
    staff.go(&format!("{site}/console/coupons"));
    text_says(&staff, "#coupons", "1 of 1");

    // Out, and in again with the PIN and the password.
    browser.click("#logout");
    url_ends(&browser, "/portal/login");
    browser.go(&portal);
    assert!(
        browser.url().ends_with("/portal/login"),
        "the session is over"
    );
    browser.type_into("#login", PIN);
    browser.type_into("#password", PASSWORD);
    browser.click("#submit");
    assert_eq!(wait_for_balance(&browser), format_micros(recharged));

    // Whoever learns the PIN later cannot take the portal over; a wrong password gets nothing.
    let claim = format!("{portal}/claim");
    let again = [
        "--data-urlencode",
        &format!("pin={PIN}"),
        "--data-urlencode",
        "password=another long password",
        "--data-urlencode",
        "repeat=another long password",
        claim.as_str(),
    ];
    assert_eq!(curl_status(&again), 409);
    let login = format!("{portal}/login");
    let wrong = [
        "--data-urlencode",
        &format!("login={PIN}"),
        "--data-urlencode",
        "password=not the password",
        login.as_str(),
    ];
    assert_eq!(curl_status(&wrong), 401);

    // A pinless customer: the operator sets the password, the customer logs in with the
    // account number and sees the same account (a card's account here).
    let mut cli = Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args([
            "accounts",
            "portal-password",
            "--account",
            &account.to_string(),
        ])
        .arg("--data-dir")
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    cli.stdin
        .take()
        .unwrap()
        .write_all(b"set by the operator\n")
        .unwrap();
    let output = cli.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    // The operator's change ended the customer's sessions.
    browser.go(&portal);
    assert!(
        browser.url().ends_with("/portal/login"),
        "{}",
        browser.url()
    );
    browser.type_into("#login", &account.to_string());
    browser.type_into("#password", "set by the operator");
    browser.click("#submit");
    assert_eq!(wait_for_balance(&browser), format_micros(recharged));
}

/// A pinless customer logs in with their phone: baresip calls from the registered number and
/// keys `*01#` at the destination prompt; the test *listens* to what the switch said (the
/// audio baresip received, matched against the shipped digit prompts), types the code into
/// the login page in chromium, and is in. The code works once; the log never holds it.
#[test]
fn a_customer_logs_in_with_the_code_the_ivr_reads_out_to_their_phone() {
    const PHONE: &str = "15550100200";
    let dir = prepaid::data_dir("portal-phone-login");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let account = prepaid::card(&dir, PIN, 3_000_000, 0);
    prepaid::register_caller_id(&dir, account, PHONE);
    let switch = start(
        &dir,
        ConfigFile::new().raw("[portal]\naccess_number = \"+1 555 0100\"\n"),
    );

    let recordings = dir.join("heard");
    std::fs::create_dir_all(&recordings).unwrap();
    let phone = Baresip::start_with(
        &dir.join("baresip"),
        &format!("module sndfile.so\nsnd_path {}\n", recordings.display()),
        &format!("<sip:{PHONE}@127.0.0.1>;regint=0"),
    );
    phone.dial(&format!("sip:100@{}", switch.sip));
    assert!(
        phone.wait_for("Call established", Duration::from_secs(10)),
        "the switch answers the softphone:\n{}",
        phone.log_text()
    );
    // Known by its number, the caller hears the balance and the destination prompt, and keys
    // the service code the way a person does.
    wait_for_log(&switch, "enter_destination");
    phone.keys(
        Instant::now(),
        &[
            (Duration::from_millis(1_200), "*".to_owned()),
            (Duration::from_millis(1_700), "0".to_owned()),
            (Duration::from_millis(2_150), "1".to_owned()),
            (Duration::from_millis(2_700), "#".to_owned()),
        ],
    );
    wait_for_log(&switch, "portal login code read out");
    // The code is said twice; the first time is enough to hear it.
    std::thread::sleep(Duration::from_secs(9));
    phone.send("/hangup\n");
    drop(phone);

    let heard = heard_audio(&recordings);
    let code = listen_for_code(&heard);
    let log = switch.log_text();
    assert!(!log.contains(&code), "the code is in the switch's log");
    assert!(
        log.contains("num_?"),
        "the log names the code's prompts without their digits"
    );

    let browser = Browser::start();
    let base = format!("http://{}", switch.admin);
    browser.go(&format!("{base}/portal/login"));
    browser.type_into("#phone-number", "+1 555 010 0200");
    browser.type_into("#phone-code", &code);
    browser.click("#phone-submit");
    assert_eq!(wait_for_balance(&browser), format_micros(3_000_000));
    url_ends(&browser, "/portal");

    // Used up: the same code again is refused, and so is a guess.
    browser.click("#logout");
    url_ends(&browser, "/portal/login");
    browser.type_into("#phone-number", PHONE);
    browser.type_into("#phone-code", &code);
    browser.click("#phone-submit");
    text_says(&browser, "#error", "Wrong or expired code");
    assert_eq!(
        curl_status(&[
            "-d",
            &format!("number={PHONE}&code={code}"),
            &format!("{base}/portal/login/phone"),
        ]),
        401
    );
}

fn wait_for_log(switch: &common::Switch, text: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !switch.log_text().contains(text) {
        assert!(
            Instant::now() < deadline,
            "the switch never logged {text:?}:\n{}",
            common::tail(&switch.log_text(), 30)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The audio baresip decoded from the switch (its `sndfile` module's `-dec` dump).
fn heard_audio(dir: &std::path::Path) -> Vec<i16> {
    let dump = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.to_string_lossy().ends_with("-dec.wav"))
        .unwrap_or_else(|| panic!("baresip recorded nothing in {}", dir.display()));
    wav_samples(&std::fs::read(dump).unwrap())
}

/// The 16-bit samples of a WAV file's `data` chunk.
fn wav_samples(bytes: &[u8]) -> Vec<i16> {
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        if &bytes[at..at + 4] == b"data" {
            let end = (at + 8 + size).min(bytes.len());
            return bytes[at + 8..end]
                .chunks_exact(2)
                .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
                .collect();
        }
        at += 8 + size + size % 2;
    }
    panic!("a WAV file without data");
}

fn prompt(name: &str) -> Vec<i16> {
    let path = common::repo_root().join(format!("prompts/en/{name}.wav"));
    wav_samples(&std::fs::read(path).unwrap())
}

/// How far `template` is from the audio at `at`: the squared difference over the template's
/// energy (0 for the very samples, about 2 for unrelated speech).
fn distance(audio: &[i16], at: usize, template: &[i16]) -> f64 {
    let Some(window) = audio.get(at..at + template.len()) else {
        return f64::MAX;
    };
    let (mut difference, mut energy) = (0f64, 0f64);
    for (heard, said) in window.iter().zip(template) {
        difference += (f64::from(*heard) - f64::from(*said)).powi(2);
        energy += f64::from(*said).powi(2);
    }
    difference / energy.max(1.0)
}

/// The best place for `template` among `starts`, and its distance.
fn best_place(
    audio: &[i16],
    template: &[i16],
    starts: impl Iterator<Item = usize>,
) -> (usize, f64) {
    starts
        .map(|at| (at, distance(audio, at, template)))
        .fold(
            (0, f64::MAX),
            |best, next| if next.1 < best.1 { next } else { best },
        )
}

/// The six digits said after "Your code for the web portal is", found by matching the
/// shipped prompts against what the phone heard (G.711 keeps them within a few percent).
fn listen_for_code(audio: &[i16]) -> String {
    let intro = prompt("portal_code");
    // Coarsely every 10 ms, then to the sample.
    let (coarse, _) = best_place(audio, &intro[..1600], (0..audio.len()).step_by(80));
    let (start, fit) = best_place(audio, &intro, coarse.saturating_sub(80)..coarse + 80);
    assert!(
        fit < 0.2,
        "the phone never heard the code's introduction ({fit:.3})"
    );
    let digits: Vec<Vec<i16>> = (0..10)
        .map(|digit| prompt(&format!("num_{digit}")))
        .collect();
    let mut at = start + intro.len();
    let mut code = String::new();
    for _ in 0..6 {
        // Each prompt is padded to whole 20 ms frames, so the next starts within a frame of
        // where this one ends; two frames either side more in case the phone's jitter buffer
        // dropped or added one.
        let mut best = (0, 0, f64::MAX);
        let window = at.saturating_sub(320)..at + 480;
        for (digit, template) in digits.iter().enumerate() {
            let (place, fit) = best_place(audio, &template[..800], window.clone());
            if fit < best.2 {
                best = (digit, place, fit);
            }
        }
        let (digit, place, fit) = best;
        assert!(
            fit < 0.2,
            "no digit heard at sample {at} ({fit:.3}); so far {code:?}"
        );
        code.push(char::from(b'0' + u8::try_from(digit).unwrap()));
        at = place + digits[digit].len();
    }
    code
}
