//! The operator console in a real browser (issue 15), over HTTPS (issue 18): Debian's chromium
//! through chromedriver.
//! An admin logs in with the password the first start wrote, sees a SIPp call on the live
//! calls page and hangs it up from there (the caller gets its BYE; the CDR says `operator`);
//! a support user sees the call but cannot end it (no button, and a forged POST gets 403);
//! a POST without the session's CSRF token is refused; wrong passwords are throttled.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::browser::Browser;
use common::calls::{answering_carrier, call_at, only_call_id, start};
use common::certs::Certificates;
use common::prepaid::{self, ConfigFile};
use common::scenario::render;
use common::{assert_sipp_ok, tail};
use talktime_pii::Pii;

const PIN: &str = "7107107101";

/// One browser test at a time: each runs a switch, SIPp and a chromium, and on a 2-core
/// machine five at once starve the calls whose timing they check.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The console over HTTPS, and curl trusting the test CA for the checks beside the browser.
struct Console {
    base: String,
    /// The test CA for an HTTPS console.
    ca: Option<String>,
}

impl Console {
    fn curl(&self, args: &[&str]) -> String {
        let mut command = Command::new("curl");
        command.args(["-s", "--max-time", "10"]);
        if let Some(ca) = &self.ca {
            command.args(["--cacert", ca]);
        }
        let output = command.args(args).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Logs in: the session cookie (`name=value`, after checking its flags), or the status.
    fn log_in(&self, name: &str, password: &str) -> Result<String, u16> {
        let url = format!("{}/console/login", self.base);
        let answer = self.curl(&[
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-w",
            "\nstatus %{http_code}",
            "--data-urlencode",
            &format!("name={name}"),
            "--data-urlencode",
            &format!("password={password}"),
            &url,
        ]);
        let status: u16 = answer
            .rsplit("status ")
            .next()
            .and_then(|code| code.trim().parse().ok())
            .unwrap_or(0);
        let cookie = answer
            .lines()
            .find(|line| line.to_ascii_lowercase().starts_with("set-cookie:"))
            .map(|line| line.split_once(':').unwrap().1.trim().to_owned());
        match (status, cookie) {
            (303, Some(cookie)) => {
                for flag in ["HttpOnly", "SameSite=Strict"] {
                    assert!(cookie.contains(flag), "{cookie}");
                }
                assert_eq!(cookie.contains("Secure"), self.ca.is_some(), "{cookie}");
                Ok(cookie.split(';').next().unwrap().to_owned())
            }
            (status, _) => Err(status),
        }
    }

    fn page(&self, path: &str, cookie: &str) -> String {
        self.curl(&[
            "-H",
            &format!("cookie: {cookie}"),
            &format!("{}{path}", self.base),
        ])
    }

    /// The CSRF token on a page the cookie's session sees.
    fn csrf_of(&self, cookie: &str) -> String {
        let page = self.page("/console", cookie);
        let start = page.find("name=\"csrf\" value=\"").unwrap() + 19;
        page[start..start + 64].to_owned()
    }

    /// Posts a form; the status code.
    fn post(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> u16 {
        let mut args = vec![
            "-o".to_owned(),
            "/dev/null".to_owned(),
            "-w".to_owned(),
            "%{http_code}".to_owned(),
            "-H".to_owned(),
            format!("cookie: {cookie}"),
        ];
        for (name, value) in form {
            args.push("--data-urlencode".to_owned());
            args.push(format!("{name}={value}"));
        }
        args.push(format!("{}{path}", self.base));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.curl(&args).trim().parse().unwrap_or(0)
    }

    /// Posts a form and returns the body (a batch's CSV).
    fn post_body(&self, path: &str, cookie: &str, form: &[(&str, &str)]) -> String {
        let mut args = vec!["-H".to_owned(), format!("cookie: {cookie}")];
        for (name, value) in form {
            args.push("--data-urlencode".to_owned());
            args.push(format!("{name}={value}"));
        }
        args.push(format!("{}{path}", self.base));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.curl(&args)
    }

    /// Posts a form and saves the body into `file`; the status code.
    fn post_to_file(
        &self,
        path: &str,
        cookie: &str,
        form: &[(&str, &str)],
        file: &std::path::Path,
    ) -> u16 {
        let mut args = vec![
            "-o".to_owned(),
            file.to_string_lossy().into_owned(),
            "-w".to_owned(),
            "%{http_code}".to_owned(),
            "-H".to_owned(),
            format!("cookie: {cookie}"),
        ];
        for (name, value) in form {
            args.push("--data-urlencode".to_owned());
            args.push(format!("{name}={value}"));
        }
        args.push(format!("{}{path}", self.base));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.curl(&args).trim().parse().unwrap_or(0)
    }

    fn post_hangup(&self, cookie: &str, key: &str, csrf: Option<&str>) -> u16 {
        let form = csrf
            .map(|token| format!("csrf={token}"))
            .unwrap_or_default();
        let url = format!("{}/console/calls/{key}/hangup", self.base);
        self.curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("cookie: {cookie}"),
            "-d",
            &form,
            &url,
        ])
        .trim()
        .parse()
        .unwrap_or(0)
    }
}

#[test]
fn an_admin_hangs_up_a_live_call_from_the_browser_and_a_support_user_cannot() {
    let _turn = one_at_a_time();
    let dir = prepaid::data_dir("console");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let account = prepaid::card(&dir, PIN, 50_000_000, 0);
    let carrier = answering_carrier();
    let certificates = Certificates::make(&dir.join("certs"));
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw(&format!(
                "[admin]\ntls = true\n\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
                certificates.path("server.pem"),
                certificates.path("server.key")
            ))
            .carrier("answer", &carrier.address())
            .routes(&[("", &["answer"])]),
    );
    let site = Console {
        base: format!("https://{}", switch.admin),
        ca: Some(certificates.path("ca.pem")),
    };
    let console = site.base.clone();
    let password = std::fs::read_to_string(dir.join("admin.password")).unwrap();
    let password = password.trim();
    common::add_user(&dir, "helpdesk", "support", &[], "support-password-1");

    // A caller who stays until the switch hangs up (up to 40 s).
    let caller = {
        let sip = switch.sip;
        let dir = dir.clone();
        std::thread::spawn(move || {
            let script = [
                (Duration::from_millis(2000), "7107107101#"),
                (Duration::from_millis(5600), "0015551234567#"),
            ];
            let audio = Duration::from_secs(50);
            let wait = Duration::from_secs(70);
            call_at(
                "127.0.0.1",
                sip,
                &dir,
                "100",
                "anonymous",
                &script,
                audio,
                wait,
            )
        })
    };

    // The browser trusts exactly the switch's key (its SPKI hash), as an operator's browser
    // would trust the console's certificate.
    let browser = Browser::start_trusting(&certificates.spki("server.pem"));
    browser.log_in(&console, "admin", password);
    assert!(
        browser
            .wait_for("#calls-up", Duration::from_secs(5))
            .is_some(),
        "the dashboard after the login:\n{}",
        browser.source()
    );
    browser.screenshot("dashboard-empty");
    browser.go(&format!("{console}/console/calls"));
    // The page refreshes itself: the call shows up, then is bridged to the carrier.
    let bridged = (0..75).any(|_| {
        std::thread::sleep(Duration::from_millis(200));
        browser.source().contains("Bridged")
    });
    assert!(
        bridged,
        "the call is on the page:\n{}\n{}",
        browser.source(),
        tail(&switch.log_text(), 20)
    );
    browser.screenshot("live-calls");
    let row = browser.text("tr.call");
    assert!(row.contains("100"), "{row}");
    assert!(row.contains("answer"), "{row}");
    assert!(!row.contains("15551234567"), "numbers are masked: {row}");
    assert!(row.contains("4567"), "{row}");
    // The destination's description, its rate and what the talk time so far costs.
    assert!(row.contains("USA") && row.contains("0.6"), "{row}");
    assert!(browser.text("tr.call td.cost").ends_with("USD"), "{row}");

    // Support sees it but cannot end it: no button, and a forged POST is refused.
    let support = site.log_in("helpdesk", "support-password-1").unwrap();
    let support_csrf = site.csrf_of(&support);
    let page = site.page("/console/calls", &support);
    assert!(
        page.contains("Bridged") && !page.contains("Hang up"),
        "{page}"
    );
    let admin = site.log_in("admin", password).unwrap();
    let admin_key = {
        let page = site.page("/console/calls", &admin);
        page.split("/console/calls/")
            .nth(1)
            .map(|rest| rest.split('/').next().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(
        site.post_hangup(&support, &admin_key, Some(&support_csrf)),
        403
    );
    // The admin's own session, but no CSRF token: refused too.
    assert_eq!(site.post_hangup(&admin, &admin_key, None), 403);
    assert_eq!(
        site.post_hangup(&admin, &admin_key, Some(&"0".repeat(64))),
        403
    );
    assert!(
        browser.source().contains("Bridged"),
        "refused POSTs ended nothing"
    );

    // The admin ends it in the browser.
    browser.click("button.hangup");
    let output = caller.join().unwrap();
    assert_sipp_ok(
        &output,
        &switch,
        "the caller gets the BYE of the operator's hang-up",
    );
    let reservation = format!("{}#1", only_call_id(&switch));
    let cdr = prepaid::wait_for_cdrs(&dir, &reservation, 1).remove(0);
    assert_eq!(cdr.disconnect_cause.as_deref(), Some("operator"), "{cdr:?}");
    assert!(cdr.total_micros > 0);
    assert_eq!(
        prepaid::balance(&dir, account),
        50_000_000 - cdr.total_micros
    );
    assert!(switch.log_text().contains("call hung up by an operator"));

    // The CDR search finds it by its cause; a bad date is named at its field.
    browser.go(&format!("{console}/console/cdrs"));
    browser.type_into("#cause", "operator");
    browser.click("#search");
    assert!(
        browser.wait_for("tr.cdr", Duration::from_secs(5)).is_some(),
        "{}",
        browser.source()
    );
    browser.screenshot("cdrs");
    let cdr_row = browser.text("tr.cdr");
    assert!(
        cdr_row.contains("operator") && cdr_row.contains("answer"),
        "{cdr_row}"
    );
    // The same search as a CSV download, with the full numbers for reconciliation.
    let export = site.page("/console/cdrs/export?cause=operator", &admin);
    let lines: Vec<&str> = export.lines().collect();
    assert_eq!(lines.len(), 2, "{export}");
    assert!(lines[0].starts_with("call_id,"), "{export}");
    assert!(
        lines[1].contains("15551234567,answer,") && lines[1].ends_with(",operator"),
        "{export}"
    );
    browser.go(&format!("{console}/console/cdrs?from=yesterday"));
    assert!(browser.text("#error-from").contains("not a date"));
    assert!(browser.all("tr.cdr").is_empty());

    // The report by carrier counts the call, with its revenue as a bar.
    browser.go(&format!("{console}/console/reports?by=carrier"));
    browser.screenshot("reports");
    let traffic = browser.text("tr.traffic");
    assert!(traffic.starts_with("answer 1 1 100"), "{traffic}");
    assert!(!browser.all("#revenue-chart").is_empty());
    browser.go(&format!("{console}/console/reports?by=weekday"));
    assert!(browser.text("#error-by").contains("carrier"));

    // The users page shows who did what.
    browser.go(&format!("{console}/console/users"));
    browser.screenshot("users");
    let audit = browser.source();
    assert!(
        audit.contains("hang_up") && audit.contains("helpdesk"),
        "{audit}"
    );

    // Wrong passwords: a message, then a wait.
    for _ in 0..5 {
        assert_eq!(site.log_in("admin", "not-the-password"), Err(401));
    }
    assert_eq!(site.log_in("admin", password), Err(429));
    browser.click("#logout");
    let logged_out = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        browser.url().ends_with("/console/login")
    });
    assert!(logged_out, "{}", browser.url());
    // The old session is gone: the console asks for a login again.
    browser.go(&format!("{console}/console/calls"));
    assert!(
        browser.url().ends_with("/console/login"),
        "{}",
        browser.url()
    );
    drop(carrier);
}

/// Cards in the console: a batch generated (its CSV holds the PINs), a card found by PIN in
/// the browser, recharged once even when the form is posted twice, blocked; a support user
/// may recharge but not block; bad input is named at its field and changes nothing.
#[test]
fn cards_are_generated_found_by_pin_recharged_once_and_blocked() {
    let _turn = one_at_a_time();
    let dir = prepaid::data_dir("console-cards");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let switch = start(&dir, ConfigFile::new());
    let site = Console {
        base: format!("http://{}", switch.admin),
        ca: None,
    };
    let console = site.base.clone();
    let password = std::fs::read_to_string(dir.join("admin.password")).unwrap();
    let password = password.trim();
    common::add_user(&dir, "helpdesk", "support", &[], "support-password-1");
    let admin = site.log_in("admin", password).unwrap();
    let csrf = site.csrf_of(&admin);

    let csv = site.post_body(
        "/console/cards/batches",
        &admin,
        &[
            ("csrf", &csrf),
            ("name", "shop 7"),
            ("count", "3"),
            ("value", "5.00"),
            ("tariff", "demo"),
        ],
    );
    let pins: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(pins.len(), 3, "{csv}");
    // A bad count is named at its field, and nothing is made.
    let refused = site.post(
        "/console/cards/batches",
        &admin,
        &[
            ("csrf", &csrf),
            ("name", "x"),
            ("count", "none"),
            ("value", "5"),
        ],
    );
    assert_eq!(refused, 400);

    // The same as a workbook: openpyxl reads it back, every PIN a 10-digit text cell (leading
    // zeros kept), and each one finds its card.
    let workbook = dir.join("batch.xlsx");
    let status = site.post_to_file(
        "/console/cards/batches",
        &admin,
        &[
            ("csrf", &csrf),
            ("name", "shop 8"),
            ("count", "4"),
            ("value", "2.50"),
            ("tariff", "demo"),
            ("format", "xlsx"),
        ],
        &workbook,
    );
    assert_eq!(status, 200);
    let rows = common::read_workbook(&workbook);
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(rows[0][..3], ["card_id", "pin", "balance"], "{rows:?}");
    for row in &rows[1..] {
        let pin = &row[1];
        assert!(
            pin.len() == 10 && pin.bytes().all(|b| b.is_ascii_digit()),
            "{row:?}"
        );
        assert_eq!(row[2], "2.5", "the balance is a number: {row:?}");
        let found = site.post(
            "/console/cards/find",
            &admin,
            &[("csrf", &csrf), ("pin", pin)],
        );
        assert_eq!(found, 303, "PIN {pin} of the workbook finds its card");
    }
    assert!(rows[1..].iter().all(|row| !pins.contains(&row[1])));

    // Every option of a batch from the form: expiry after first use, activation fee, a
    // maintenance plan; half a plan is named at its field and makes nothing.
    let batch = site.post_body(
        "/console/cards/batches",
        &admin,
        &[
            ("csrf", &csrf),
            ("name", "shop 9"),
            ("count", "1"),
            ("value", "5"),
            ("tariff", "demo"),
            ("expire_days", "30"),
            ("activation_fee", "0.39"),
            ("maintenance_fee", "0.25"),
            ("maintenance_every", "30d"),
        ],
    );
    let row: Vec<&str> = batch.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(row[7], (30 * 86_400_000i64).to_string(), "{batch}");
    let half_plan = site.post(
        "/console/cards/batches",
        &admin,
        &[
            ("csrf", &csrf),
            ("name", "shop 10"),
            ("count", "1"),
            ("value", "5"),
            ("maintenance_fee", "0.25"),
        ],
    );
    assert_eq!(half_plan, 400);

    let browser = Browser::start();
    browser.go(&format!("{console}/console/login"));
    browser.screenshot("login");
    browser.log_in(&console, "admin", password);
    browser
        .wait_for("#calls-up", Duration::from_secs(5))
        .unwrap();
    browser.go(&format!("{console}/console/cards"));
    browser.screenshot("cards");
    browser.type_into("#pin", "999999999999");
    browser.click("#find");
    assert!(browser.text("#error-pin").contains("No card"));
    browser.type_into("#pin", &pins[0]);
    browser.click("#find");
    assert_eq!(browser.text("#balance"), "5");
    let card_url = browser.url();
    assert!(!card_url.contains(&pins[0]), "no PIN in a URL: {card_url}");
    browser.type_into("#amount", "ten");
    browser.click("#recharge");
    assert!(browser.text("#error-amount").contains("10.00"));
    assert_eq!(browser.text("#balance"), "5");
    browser.type_into("#amount", "2.50");
    browser.click("#recharge");
    let recharged = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        !browser.all("#balance").is_empty() && browser.text("#balance") == "7.5"
    });
    assert!(recharged, "{}", browser.source());

    // The same form posted twice (a double click, a retry) credits once.
    let card_path = card_url.split_once(&console).unwrap().1.to_owned();
    let key = "form-key-0001";
    for _ in 0..2 {
        let status = site.post(
            &format!("{card_path}/recharge"),
            &admin,
            &[("csrf", &csrf), ("amount", "2.50"), ("key", key)],
        );
        assert_eq!(status, 303);
    }
    browser.go(&card_url);
    assert_eq!(browser.text("#balance"), "10");

    // Support may recharge, not block.
    let support = site.log_in("helpdesk", "support-password-1").unwrap();
    let support_csrf = site.csrf_of(&support);
    let blocked_by_support = site.post(
        &format!("{card_path}/status"),
        &support,
        &[("csrf", &support_csrf), ("status", "blocked")],
    );
    assert_eq!(blocked_by_support, 403);
    let recharged_by_support = site.post(
        &format!("{card_path}/recharge"),
        &support,
        &[
            ("csrf", &support_csrf),
            ("amount", "1"),
            ("key", "support-key-1"),
        ],
    );
    assert_eq!(recharged_by_support, 303);
    browser.go(&card_url);
    assert_eq!(browser.text("#balance"), "11");
    assert_eq!(browser.text("#status"), "new");
    browser.click("#block");
    let blocked = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        !browser.all("#status").is_empty() && browser.text("#status") == "blocked"
    });
    assert!(blocked, "{}", browser.source());
    browser.screenshot("card");
    // The card's account: a caller ID added (bad input named first) and removed, and a
    // recharge from the account page.
    browser.click("#account");
    browser.type_into("#number", "555-CALL");
    browser.click("#add-caller");
    assert!(browser.text("#error-number").contains("Digits"));
    browser.type_into("#number", "+15551239999");
    browser.click("#add-caller");
    let listed = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        browser.all("li.caller").len() == 1
    });
    assert!(listed, "{}", browser.source());
    assert!(browser.text("li.caller").contains("15551239999"));
    browser.screenshot("account");
    browser.click("li.caller button.remove");
    let removed = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        browser.all("li.caller").is_empty() && !browser.all("#balance").is_empty()
    });
    assert!(removed, "{}", browser.source());
    // Forwarding and limits: a bad value named at its field, then saved.
    browser.clear("#concurrency");
    browser.type_into("#concurrency", "lots");
    browser.click("#save-account");
    assert!(browser.text("#error-concurrency").contains("1 to 1000"));
    browser.clear("#concurrency");
    browser.type_into("#concurrency", "3");
    browser.type_into("#forward", "0015551234567");
    browser.click("#save-account");
    let saved = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        browser.source().contains("calls at once 3")
    });
    assert!(saved, "{}", browser.source());
    assert!(browser.source().contains("forwards to 0015551234567"));
    browser.type_into("#amount", "4");
    browser.click("#recharge");
    let credited = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        !browser.all("#balance").is_empty() && browser.text("#balance") == "15"
    });
    assert!(credited, "{}", browser.source());
    browser.go(&format!("{console}/console/users"));
    let audit = browser.source();
    assert!(
        audit.contains("batch_generate") && audit.contains("card_status"),
        "{audit}"
    );
    assert!(audit.contains("caller_id_add") && audit.contains("caller_id_remove"));

    // Tariffs: a dry run names the bad row and writes nothing; an import of 250 prefixes,
    // then a search and the next page.
    browser.go(&format!("{console}/console/tariffs"));
    assert!(browser.text("tr.tariff").contains("demo"));
    browser.click("tr.tariff a");
    browser.find("#csv");
    let tariff_path = browser.url().split_once(&console).unwrap().1.to_owned();
    let header = "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee";
    browser.type_into(
        "#csv",
        &format!("{header}\n44,UK,0.05,0.02,60,60,0\nxx,Bad,0.1,0.1,60,60,0\n"),
    );
    browser.click("#dry_run");
    browser.click("#import");
    let reported = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        !browser.all("#report").is_empty()
    });
    assert!(reported, "{}", browser.source());
    assert!(
        browser
            .text("#report")
            .contains("2 rows read, 1 valid, 0 written")
    );
    browser.screenshot("tariff-import");
    let row_error = browser.text("li.row-error");
    assert!(row_error.contains("line 3"), "{row_error}");
    assert_eq!(browser.all("tr.rate").len(), 1, "a dry run writes nothing");
    let mut csv = format!("{header}\n");
    for index in 0..250 {
        csv.push_str(&format!("44{index:03},UK {index},0.05,0.02,60,60,0\n"));
    }
    let imported = site.post(
        &format!("{tariff_path}/import"),
        &admin,
        &[("csrf", &csrf), ("csv", &csv)],
    );
    assert_eq!(imported, 200);
    browser.go(&format!("{console}{tariff_path}?search=4401"));
    assert_eq!(browser.all("tr.rate").len(), 10, "{}", browser.source());
    browser.go(&format!("{console}{tariff_path}?search=44"));
    assert_eq!(browser.all("tr.rate").len(), 100);
    browser.click("#next");
    let next_page = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        browser.url().contains("after=44099")
    });
    assert!(next_page, "{}", browser.url());
    assert_eq!(browser.all("tr.rate").len(), 100);
    assert!(browser.text("tr.rate").starts_with("44100"));
    // A support user may look, not import.
    let support_import = site.post(
        &format!("{tariff_path}/import"),
        &support,
        &[("csrf", &support_csrf), ("csv", &csv)],
    );
    assert_eq!(support_import, 403);

    // A support user's own API token reads and recharges, and may not make cards.
    let token = Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args([
            "users",
            "token",
            "helpdesk",
            "--label",
            "till",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(token.status.success(), "{token:?}");
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let api = |method: &str, path: &str, body: &str, bearer: &str| -> String {
        site.curl(&[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            method,
            "-H",
            &format!("authorization: Bearer {bearer}"),
            "-H",
            "content-type: application/json",
            "-H",
            "idempotency-key: till-1",
            "-d",
            body,
            &format!("{console}{path}"),
        ])
    };
    assert_eq!(api("GET", "/api/accounts/1", "", &token), "200");
    let recharge = "{\"amount\":\"1.00\"}";
    assert_eq!(
        api("POST", "/api/accounts/1/recharge", recharge, &token),
        "200"
    );
    let batch = "{\"name\":\"x\",\"count\":1,\"value\":\"1\"}";
    assert_eq!(api("POST", "/api/cards/batches", batch, &token), "403");
    assert_eq!(api("GET", "/api/accounts/1", "", "not-a-token"), "401");
    let store = prepaid::open(&dir);
    assert!(
        prepaid::runtime()
            .block_on(store.check_balances())
            .unwrap()
            .is_empty()
    );
}

/// Every CDR of the ledger, newest first.
fn all_cdrs(dir: &std::path::Path) -> Vec<talktime_store::Cdr> {
    let store = prepaid::open(dir);
    let filter = talktime_store::CdrFilter {
        from_ms: 0,
        to_ms: i64::MAX,
        account_id: None,
        carrier: None,
        cause: None,
        destination_prefix: None,
        reseller_tree: None,
    };
    prepaid::runtime()
        .block_on(store.search_cdrs(&filter, None, 100))
        .unwrap()
        .into_iter()
        .map(|(_, cdr)| cdr)
        .collect()
}

/// Carriers and dial plans changed in the browser while a call is up: a bad port is named at
/// its field and writes nothing; a new carrier and a route to it carry the next call at once,
/// without a restart, and the call already up stays up on its carrier until the operator
/// hangs up every call of its account.
#[test]
fn a_carrier_and_a_route_added_in_the_browser_carry_the_next_call_while_another_stays_up() {
    let _turn = one_at_a_time();
    let dir = prepaid::data_dir("console-routing");
    prepaid::tariff(
        &dir,
        "demo",
        "1,USA,0.60,0.30,1,1,0\n44,United Kingdom,0.60,0.30,1,1,0\n",
    );
    let first_account = prepaid::card(&dir, PIN, 50_000_000, 0);
    prepaid::card(&dir, "7207207202", 50_000_000, 0);
    let first = answering_carrier();
    let second = answering_carrier();
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("first", &first.address())
            .routes(&[("", &["first"])]),
    );
    let console = format!("http://{}", switch.admin);
    let password = std::fs::read_to_string(dir.join("admin.password")).unwrap();
    let password = password.trim().to_owned();

    // The first call, to the US through "first", stays up until the operator ends it.
    let caller = {
        let sip = switch.sip;
        let dir = dir.clone();
        std::thread::spawn(move || {
            let script = [
                (Duration::from_millis(2000), "7107107101#"),
                (Duration::from_millis(5600), "0015551234567#"),
            ];
            call_at(
                "127.0.0.1",
                sip,
                &dir,
                "100",
                "anonymous",
                &script,
                Duration::from_secs(50),
                Duration::from_secs(60),
            )
        })
    };
    common::calls::wait_for_bridged_calls(1, &switch);

    let browser = Browser::start();
    browser.log_in(&console, "admin", &password);
    browser
        .wait_for("#calls-up", Duration::from_secs(5))
        .unwrap();
    browser.go(&format!("{console}/console/carriers"));
    assert_eq!(browser.all("tr.carrier").len(), 1, "{}", browser.source());
    let first_row = browser.text("tr.carrier");
    assert!(
        first_row.contains("first") && first_row.contains("enabled"),
        "{first_row}"
    );
    let (host, port) = second
        .address()
        .rsplit_once(':')
        .map(|(h, p)| (h.to_owned(), p.to_owned()))
        .unwrap();

    // A port that is not a number: the message at the field, nothing written.
    browser.type_into("#name", "second");
    browser.type_into("#host", &host);
    browser.type_into("#port", "5o60");
    browser.click("#save-carrier");
    assert!(
        browser.text("#error-port").contains("not a whole number"),
        "{}",
        browser.source()
    );
    assert_eq!(browser.all("tr.carrier").len(), 1);

    browser.go(&format!("{console}/console/carriers"));
    browser.type_into("#name", "second");
    browser.type_into("#host", &host);
    browser.type_into("#port", &port);
    browser.type_into("#options_interval_ms", "0");
    browser.click("#save-carrier");
    let listed = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        browser.all("tr.carrier").len() == 2
    });
    assert!(listed, "{}", browser.source());
    browser.screenshot("carriers");

    // A route naming a carrier that does not exist is refused at its field.
    browser.go(&format!("{console}/console/dial-plans"));
    browser.type_into("#plan", "default");
    browser.type_into("#prefix", "44");
    browser.type_into("#carriers", "nobody");
    browser.click("#save-route");
    assert!(
        browser.text("#error-carriers").contains("unknown carrier"),
        "{}",
        browser.source()
    );
    browser.go(&format!("{console}/console/dial-plans"));
    browser.type_into("#plan", "default");
    browser.type_into("#prefix", "44");
    browser.type_into("#carriers", "second");
    browser.click("#save-route");
    let routed = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        browser.all("tr.route").len() == 2
    });
    assert!(routed, "{}", browser.source());
    browser.type_into("#explain-plan", "default");
    browser.type_into("#explain-number", "00441234567890");
    browser.click("#explain");
    let explanation = browser.text("#explanation");
    assert!(explanation.contains("second"), "{explanation}");
    browser.screenshot("dial-plans");

    // The next call, to the UK, goes through the new carrier; the first is still up.
    let script = [
        (Duration::from_millis(2000), "7207207202#"),
        (Duration::from_millis(5600), "00441234567890#"),
    ];
    // Held long enough for the talk-time announcement and the answer on a loaded machine.
    let output = common::calls::call_and_hang_up(&switch, &dir, &script, Duration::from_secs(6));
    assert_sipp_ok(
        &output,
        &switch,
        "the UK call through the carrier added live",
    );
    let uk = (0..50)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            all_cdrs(&dir)
                .into_iter()
                .find(|cdr| cdr.carrier.as_deref() == Some("second"))
        })
        .unwrap_or_else(|| {
            panic!(
                "the UK call's CDR: {:?}\n{}",
                all_cdrs(&dir),
                tail(&switch.log_text(), 40)
            )
        });
    assert!(uk.destination.expose().contains("4412345"), "{uk:?}");
    assert!(uk.billed_seconds > 0, "{uk:?}");

    // The first call is still up on "first"; the operator ends every call of its account.
    browser.go(&format!("{console}/console/calls"));
    let row = browser.text("tr.call");
    assert!(row.contains("Bridged") && row.contains("first"), "{row}");
    browser.click("button.hangup-account");
    let output = caller.join().unwrap();
    assert_sipp_ok(&output, &switch, "the first caller gets the operator's BYE");
    let us = (0..50)
        .find_map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            all_cdrs(&dir)
                .into_iter()
                .find(|cdr| cdr.carrier.as_deref() == Some("first"))
        })
        .expect("the US call's CDR");
    assert_eq!(us.carrier.as_deref(), Some("first"), "{us:?}");
    assert_eq!(us.account_id, Some(first_account));
    assert_eq!(us.disconnect_cause.as_deref(), Some("operator"), "{us:?}");
    assert_eq!(
        switch.log_text().matches("Talktime ready").count(),
        1,
        "no restart"
    );

    // The dashboard counts both calls: today's revenue, the last hour's ASR, the hourly bars.
    browser.go(&format!("{console}/console"));
    let revenue = browser.text("#revenue");
    assert!(revenue != "0" && !revenue.is_empty(), "{revenue}");
    assert_eq!(browser.text("#asr"), "100%");
    assert!(!browser.all("#hourly-chart rect").is_empty());
    browser.screenshot("dashboard");

    // The change is the database's: `routes show` lists the new carrier, without password.
    let shown = Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args(["routes", "show", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("\"second\"") && !shown.contains("\"password\""),
        "{shown}"
    );
    drop((first, second));
}

/// Prompts in the browser: every language's recordings listed with a player whose file
/// plays (a real WAV comes back), a new one recorded with espeak-ng uploaded from the page,
/// and a file that is not audio refused at its field with nothing written.
#[test]
fn prompts_are_listed_played_and_uploaded_from_the_browser() {
    let _turn = one_at_a_time();
    let dir = prepaid::data_dir("console-prompts");
    let prompts = dir.join("prompts");
    for language in ["en", "es"] {
        let from = common::repo_root().join("prompts").join(language);
        std::fs::create_dir_all(prompts.join(language)).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            std::fs::copy(entry.path(), prompts.join(language).join(entry.file_name())).unwrap();
        }
    }
    let switch = common::calls::start_with(
        &dir,
        ConfigFile::new(),
        &["--prompts-dir", prompts.to_str().unwrap()],
    );
    let console = format!("http://{}", switch.admin);
    let site = Console {
        base: console.clone(),
        ca: None,
    };
    let password = std::fs::read_to_string(dir.join("admin.password")).unwrap();
    let password = password.trim().to_owned();
    let browser = Browser::start();
    browser.log_in(&console, "admin", &password);
    browser
        .wait_for("#calls-up", Duration::from_secs(5))
        .unwrap();
    browser.go(&format!("{console}/console/prompts"));
    let listed = browser.all("table[data-language=en] tr.prompt").len();
    assert!(listed > 10, "{}", browser.source());
    assert!(!browser.all("table[data-language=es] tr.prompt").is_empty());
    let source = browser.source();
    let start = source.find("src=\"/console/prompts/en/").unwrap() + 5;
    let file_path = &source[start..source[start..].find('"').unwrap() + start];
    let cookie = site.log_in("admin", &password).unwrap();
    let audio = Command::new("curl")
        .args(["-s", "-H", &format!("cookie: {cookie}")])
        .arg(format!("{console}{file_path}"))
        .output()
        .unwrap();
    assert!(
        audio.stdout.starts_with(b"RIFF") || audio.stdout.starts_with(b"ID3"),
        "{file_path} is audio"
    );

    // A new recording, made as an operator would: espeak-ng, then sox to 8 kHz mono.
    let spoken = dir.join("spoken.wav");
    let recorded = dir.join("promo.wav");
    let status = Command::new("espeak-ng")
        .args([
            "-w",
            spoken.to_str().unwrap(),
            "Recharge today and get ten percent more.",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let status = Command::new("sox")
        .arg(&spoken)
        .args(["-r", "8000", "-c", "1", "-b", "16"])
        .arg(&recorded)
        .status()
        .unwrap();
    assert!(status.success());
    browser.type_into("#name", "promo");
    browser.type_into("#file", recorded.to_str().unwrap());
    browser.click("#upload");
    let uploaded = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        browser.source().contains("/console/prompts/en/promo.wav")
    });
    assert!(uploaded, "{}", browser.source());
    assert!(prompts.join("en/promo.wav").exists());
    assert!(switch.log_text().contains("prompt uploaded"));
    browser.screenshot("prompts");

    // Not audio: refused at its field, nothing written.
    let text = dir.join("notes.wav");
    std::fs::write(&text, "this is not a recording").unwrap();
    browser.go(&format!("{console}/console/prompts"));
    browser.type_into("#name", "notes");
    browser.type_into("#file", text.to_str().unwrap());
    browser.click("#upload");
    assert!(
        browser.text("#error-file").contains("Not audio"),
        "{}",
        browser.source()
    );
    assert!(!prompts.join("en/notes.wav").exists());
}

/// A tariff's settings edited in the browser (a bad value named, nothing written) and the
/// rate simulator pricing a call with them: 90 s on 60/60 blocks at 0.60 is 1.2; a toll-free
/// surcharge of 0.10 a minute set from the page adds 0.2.
#[test]
fn tariff_settings_are_edited_and_calls_priced_in_the_simulator() {
    let _turn = one_at_a_time();
    let dir = prepaid::data_dir("console-tariff");
    let tariff = prepaid::tariff(&dir, "retail", "44,United Kingdom,0.60,0.30,60,60,0\n");
    let switch = start(&dir, ConfigFile::new());
    let console = format!("http://{}", switch.admin);
    let password = std::fs::read_to_string(dir.join("admin.password")).unwrap();
    let browser = Browser::start();
    browser.log_in(&console, "admin", password.trim());
    browser
        .wait_for("#calls-up", Duration::from_secs(5))
        .unwrap();
    let page = format!("{console}/console/tariffs/{tariff}");
    browser.go(&page);
    assert!(browser.text("#settings").contains("decimal_places"));

    browser.type_into("#sim-number", "441234567890");
    browser.type_into("#sim-seconds", "90");
    browser.click("#simulate");
    assert_eq!(
        browser.text("#sim-total"),
        "1.2000 USD",
        "{}",
        browser.source()
    );
    browser.go(&format!("{page}/simulate?number=44x&seconds=90"));
    assert!(browser.text("#error-number").contains("Digits"));

    browser.go(&page);
    browser.clear("#settings");
    browser.type_into("#settings", "decimal_places = 9\n");
    browser.click("#save-settings");
    assert!(
        browser.text("#error-settings").contains("decimal"),
        "{}",
        browser.source()
    );
    browser.go(&page);
    assert!(browser.text("#settings").contains("decimal_places = 4"));
    browser.clear("#settings");
    browser.type_into("#settings", "toll_free_surcharge_per_minute = \"0.10\"\n");
    browser.click("#save-settings");
    let saved = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        !browser.all("#settings").is_empty()
            && browser
                .text("#settings")
                .contains("toll_free_surcharge_per_minute = \"0.1")
    });
    assert!(saved, "{}", browser.source());
    browser.go(&format!(
        "{page}/simulate?number=441234567890&seconds=90&toll_free=on&balance=5"
    ));
    assert_eq!(
        browser.text("#sim-total"),
        "1.4000 USD",
        "{}",
        browser.source()
    );
    assert!(!browser.all("#sim-talk-time").is_empty());
    browser.screenshot("tariff-simulator");

    // Support may not change a tariff: 403, and nothing is written.
    let site = Console {
        base: console.clone(),
        ca: None,
    };
    common::add_user(&dir, "helpdesk", "support", &[], "support-password-1");
    let support = site.log_in("helpdesk", "support-password-1").unwrap();
    let support_csrf = site.csrf_of(&support);
    let refused = site.post(
        &format!("/console/tariffs/{tariff}/settings"),
        &support,
        &[
            ("csrf", &support_csrf),
            ("settings", "decimal_places = 2\n"),
        ],
    );
    assert_eq!(refused, 403);
    let refused = site.post(
        &format!("/console/tariffs/{tariff}/import"),
        &support,
        &[
            ("csrf", &support_csrf),
            ("csv", "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee\n1,USA,0.01,0.01,1,1,0\n"),
        ],
    );
    assert_eq!(refused, 403);
    browser.go(&page);
    assert!(browser.text("#settings").contains("decimal_places = 4"));
    assert!(!browser.source().contains("USA"), "no rate was imported");

    // Users from the browser: a short password named, then an operator added and disabled;
    // a disabled user cannot log in.
    browser.go(&format!("{console}/console/users"));
    browser.type_into("#name", "ops1");
    browser.type_into("#password", "short");
    browser.click("#add-user");
    assert!(browser.text("#error-password").contains("10 characters"));
    browser.go(&format!("{console}/console/users"));
    browser.type_into("#name", "ops1");
    browser.type_into("#password", "a-long-enough-password");
    browser.click("#add-user");
    assert!(
        browser
            .wait_for("tr[data-user=ops1]", Duration::from_secs(5))
            .is_some()
    );
    assert!(site.log_in("ops1", "a-long-enough-password").is_ok());
    browser.click("tr[data-user=ops1] button.toggle-user");
    let disabled = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        !browser.all("tr[data-user=ops1]").is_empty()
            && browser.text("tr[data-user=ops1]").contains("disabled")
    });
    assert!(disabled, "{}", browser.source());
    assert_eq!(site.log_in("ops1", "a-long-enough-password"), Err(401));
}

#[test]
fn vouchers_are_made_and_listed_and_speed_dials_kept_from_the_browser() {
    let _turn = one_at_a_time();
    let dir = prepaid::data_dir("console-vouchers");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let account = prepaid::card(&dir, "1234567890", 1_000_000, 0);
    // The customer's phone, which answers the web callback placed from the account page.
    let phone = common::baresip::Baresip::start_with(
        &dir.join("phone"),
        "",
        "<sip:15551230001@127.0.0.1>;regint=0;answermode=auto",
    );
    let switch = start(
        &dir,
        ConfigFile::new()
            .raw("[[access_numbers]]\nnumber = \"600\"\ncallback = true\n")
            .carrier("phones", &format!("127.0.0.1:{}", phone.sip_port))
            .routes(&[("1555", &["phones"])]),
    );
    let console = format!("http://{}", switch.admin);
    let site = Console {
        base: console.clone(),
        ca: None,
    };
    let password = std::fs::read_to_string(dir.join("admin.password")).unwrap();
    let password = password.trim().to_owned();
    let admin = site.log_in("admin", &password).unwrap();
    let csrf = site.csrf_of(&admin);
    let csv = site.post_body(
        "/console/vouchers",
        &admin,
        &[
            ("csrf", &csrf),
            ("name", "shop"),
            ("count", "2"),
            ("value", "5.00"),
            ("currency", "usd"),
        ],
    );
    let codes: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 2, "{csv}");
    assert!(codes.iter().all(|code| code.len() == 12), "{csv}");
    let refused = site.post(
        "/console/vouchers",
        &admin,
        &[
            ("csrf", &csrf),
            ("name", "x"),
            ("count", "some"),
            ("value", "5"),
        ],
    );
    assert_eq!(refused, 400);
    // The card's holder keys the first voucher (the ledger, as the IVR does).
    let store = prepaid::open(&dir);
    let redeemed = prepaid::runtime()
        .block_on(store.redeem_voucher(
            account,
            &Pii::new(codes[0].clone()),
            Some("call-x"),
            1_780_000_000_000,
        ))
        .unwrap();
    assert!(
        matches!(redeemed, talktime_store::Redemption::Credited { .. }),
        "{redeemed:?}"
    );

    let browser = Browser::start();
    browser.log_in(&console, "admin", &password);
    browser.go(&format!("{console}/console/vouchers?batch=1"));
    let rows = browser.all("tr.voucher");
    assert_eq!(rows.len(), 2, "{}", browser.source());
    let source = browser.source();
    assert!(source.contains("<td class=\"state\">used</td>"), "{source}");
    assert!(
        source.contains("<td class=\"state\">active</td>"),
        "{source}"
    );
    assert!(
        source.contains(&format!("/console/accounts/{account}")),
        "{source}"
    );
    assert!(
        codes.iter().all(|code| !source.contains(code.as_str())),
        "codes are never shown again"
    );
    browser.screenshot("vouchers");

    // Speed dials on the account page: a bad number named, a good one stored and removed.
    browser.go(&format!("{console}/console/accounts/{account}"));
    browser.type_into("#speed-number", "555-CALL");
    browser.click("#add-speed-dial");
    assert!(
        browser.text("#error-speed").contains("a number as dialled"),
        "{}",
        browser.source()
    );
    browser.type_into("#speed-number", "00442071234567");
    browser.click("#add-speed-dial");
    let stored = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        browser.all("li.speed-dial").len() == 1
    });
    assert!(stored, "{}", browser.source());
    assert!(browser.text("li.speed-dial").contains("1: +442071234567"));
    let number = prepaid::runtime()
        .block_on(store.stored_number(account, 1))
        .unwrap();
    assert_eq!(
        number.map(|n| n.expose().clone()).as_deref(),
        Some("+442071234567")
    );
    browser.click("li.speed-dial button.remove");
    let removed = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        browser.all("li.speed-dial").is_empty() && !browser.all("#balance").is_empty()
    });
    assert!(removed, "{}", browser.source());

    // A web callback from the account page: a bad number named, then the phone rings, is
    // answered and hears the IVR; the leg to it is billed on its own CDR row.
    browser.type_into("#callback-number", "call me");
    browser.click("#place-callback");
    assert!(
        browser.text("#error-callback").contains("number"),
        "{}",
        browser.source()
    );
    browser.type_into("#callback-number", "+15551230001");
    browser.click("#place-callback");
    let placed = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        !browser.all("#callback-placed").is_empty()
    });
    assert!(placed, "{}", browser.source());
    let notice = browser.text("#callback-placed");
    let call_id = notice
        .split_whitespace()
        .nth(3)
        .unwrap()
        .trim_end_matches(';');
    assert!(
        phone.wait_for("Call established", Duration::from_secs(15)),
        "the phone is called back:\n{}",
        phone.log_text()
    );
    std::thread::sleep(Duration::from_secs(2));
    phone.send("/hangup\n");
    let caller_leg = prepaid::wait_for_cdrs(&dir, &format!("{call_id}#0"), 1);
    assert_eq!(caller_leg.len(), 1, "{notice}: {caller_leg:?}");
    assert_eq!(caller_leg[0].destination.expose(), "+15551230001");
    assert!(caller_leg[0].answer_ms.is_some(), "{caller_leg:?}");

    // A SIP subscriber added on the account page: its password is shown once and registers
    // a phone (SIPp); disabled from the page, the phone is refused.
    browser.go(&format!("{console}/console/accounts/{account}"));
    browser.type_into("#subscriber-username", "carol");
    browser.click("#add-subscriber");
    let added = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        !browser.all("#subscriber-password").is_empty()
    });
    assert!(added, "{}", browser.source());
    let password = browser.text("#subscriber-password");
    assert_eq!(password.len(), 16, "{password}");
    let register = |final_status: &str| {
        let scenario = render("subscriber_register.xml", &[("FINAL", final_status)]);
        common::sipp(
            20,
            &[
                "-sf",
                scenario.to_str().unwrap(),
                "-s",
                "carol",
                "-au",
                "carol",
                "-ap",
                &password,
                "-m",
                "1",
                &switch.sip.to_string(),
            ],
        )
    };
    assert_sipp_ok(
        &register("200"),
        &switch,
        "the console's subscriber registers",
    );
    browser.go(&format!("{console}/console/accounts/{account}"));
    browser.click("li.subscriber button.toggle");
    let disabled = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        browser.text("li.subscriber").contains("disabled")
    });
    assert!(disabled, "{}", browser.source());
    assert_sipp_ok(
        &register("403"),
        &switch,
        "a disabled subscriber is refused",
    );

    browser.go(&format!("{console}/console/users"));
    let audit = browser.source();
    assert!(
        audit.contains("vouchers_generate")
            && audit.contains("speed_dial_set")
            && audit.contains("speed_dial_remove")
            && audit.contains("callback")
            && audit.contains("subscriber_add")
            && audit.contains("subscriber_status"),
        "{audit}"
    );
}

/// Resellers on the console (issue 16): the admin adds a sub-reseller in the browser; a
/// reseller's own user logs in to its own pages under its own name, sees its tree only,
/// registers a pinless customer by number and recharges it from its credit, once however
/// often the form is sent, and finds the rival's pages and the operator's not there.
#[test]
fn a_resellers_user_works_its_own_tree_in_the_browser() {
    let _turn = one_at_a_time();
    let dir = prepaid::data_dir("console-resellers");
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let cli = |args: &[&str]| common::cli(&dir, args).trim().to_owned();
    let shop = cli(&["resellers", "add", "Sunrise Phones"]);
    let rival = cli(&["resellers", "add", "rival"]);
    cli(&["resellers", "recharge", "Sunrise Phones", "10.00"]);
    cli(&["resellers", "recharge", "rival", "5.00"]);
    common::add_user(
        &dir,
        "clerk",
        "reseller",
        &["--reseller", &shop],
        "clerk-password-1",
    );
    // With a user made before the first start, the switch makes no admin of its own.
    common::add_user(&dir, "boss", "admin", &[], "boss-password-1");
    // The US carrier answers the shop's customer and the rival's.
    let carrier = common::scenario::BackgroundSipp::uas(
        150,
        &common::scenario("carrier_answer.xml"),
        &["-rtp_echo", "-m", "2"],
    );
    let switch = start(
        &dir,
        ConfigFile::new()
            .carrier("us", &carrier.address())
            .routes(&[("1", &["us"])]),
    );
    let console = format!("http://{}", switch.admin);
    let browser = Browser::start();

    // The operator adds a sub-reseller under the shop; a parent that does not exist is named.
    browser.log_in(&console, "boss", "boss-password-1");
    browser.go(&format!("{console}/console/resellers"));
    browser.type_into("#reseller-name", "Corner");
    browser.type_into("#reseller-parent", "nobody");
    browser.click("#add-reseller");
    browser.wait_for("#error", Duration::from_secs(5));
    assert!(
        browser.text("#error").contains("nobody"),
        "{}",
        browser.source()
    );
    browser.clear("#reseller-parent");
    browser.type_into("#reseller-parent", "Sunrise Phones");
    browser.clear("#reseller-name");
    browser.type_into("#reseller-name", "Corner");
    browser.click("#add-reseller");
    assert!(
        browser
            .wait_for("#reseller-balance", Duration::from_secs(5))
            .is_some(),
        "{}",
        browser.source()
    );
    browser.click("#logout");

    // The reseller's clerk: its own pages, under its own name.
    browser.go(&format!("{console}/console/login"));
    browser.type_into("#name", "clerk");
    browser.type_into("#password", "clerk-password-1");
    browser.click("#login");
    browser.wait_for("#brand", Duration::from_secs(5));
    assert_eq!(
        browser.text("#brand"),
        "Sunrise Phones",
        "{}",
        browser.source()
    );
    assert!(
        browser.url().ends_with("/console/resellers"),
        "{}",
        browser.url()
    );
    let rows = browser.all("tr.reseller");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(
        !browser.source().contains(">rival<"),
        "{}",
        browser.source()
    );
    assert!(!browser.source().contains("Talktime"), "white label");
    browser.go(&format!("{console}/console/resellers/{shop}"));
    browser.type_into("#customer-number", "+1 555");
    browser.click("#add-customer");
    assert!(browser.wait_for("#error", Duration::from_secs(5)).is_some());
    browser.clear("#customer-number");
    browser.type_into("#customer-number", "15550002222");
    browser.click("#add-customer");
    browser.wait_for("#notice", Duration::from_secs(5));
    let notice = browser.text("#notice");
    assert!(
        notice.contains("Customer registered"),
        "{}",
        browser.source()
    );
    let account: i64 = notice
        .trim_end_matches('.')
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The recharge form's key, to send the same form again below.
    let source = browser.source();
    let key_at = source.find("name=\"key\" value=\"").unwrap() + 18;
    let key = source[key_at..key_at + 24].to_owned();
    browser.type_into("#transfer-number", "15550002222");
    browser.type_into("#transfer-amount", "2.50");
    browser.click("#transfer");
    let recharged = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        browser.source().contains("balance is 2.5")
    });
    assert!(recharged, "{}", browser.source());
    browser.screenshot("reseller");
    let site = Console {
        base: console.clone(),
        ca: None,
    };
    let clerk = site.log_in("clerk", "clerk-password-1").unwrap();
    let page = site.page("/console/resellers", &clerk);
    let csrf_at = page.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = page[csrf_at..csrf_at + 64].to_owned();
    let again = site.post(
        &format!("/console/resellers/{shop}/transfers"),
        &clerk,
        &[
            ("csrf", &csrf),
            ("key", &key),
            ("number", "15550002222"),
            ("amount", "2.50"),
        ],
    );
    assert_eq!(again, 200);
    assert_eq!(prepaid::balance(&dir, account), 2_500_000, "moved once");
    let shown = cli(&["resellers", "show", &shop]);
    assert!(shown.contains("balance 7.5 USD"), "{shown}");

    // Live calls: the shop's customer and the rival's call pinless at once; the clerk sees and
    // ends the shop's only, and the rival's is not there for it (404, the call goes on).
    let (status, body) = common::admin_request(
        &switch,
        "POST",
        &format!("/api/resellers/{rival}/customers"),
        r#"{"number": "15550005555"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let token = std::fs::read_to_string(dir.join("admin.token")).unwrap();
    let (status, body) = common::api_request(
        &switch,
        token.trim(),
        "POST",
        &format!("/api/resellers/{rival}/transfers"),
        &[("Idempotency-Key", "rival-1")],
        r#"{"number": "15550005555", "amount": "2.00"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let callers: Vec<_> = ["15550002222", "15550005555"]
        .into_iter()
        .map(|number| {
            let (dir, sip) = (dir.clone(), switch.sip);
            std::thread::spawn(move || {
                let script = [(Duration::from_secs(5), "0015551234567#")];
                call_at(
                    "127.0.0.1",
                    sip,
                    &dir,
                    "100",
                    number,
                    &script,
                    Duration::from_secs(90),
                    Duration::from_secs(90),
                )
            })
        })
        .collect();
    common::calls::wait_for_bridged_calls(2, &switch);
    let boss = site.log_in("boss", "boss-password-1").unwrap();
    let boss_csrf = site.csrf_of(&boss);
    let keys_on = |page: &str, prefix: &str| -> Vec<String> {
        page.match_indices(prefix)
            .map(|(at, _)| {
                page[at + prefix.len()..]
                    .split('/')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    // The first look starts the core's copies of the live calls: the next shows them.
    let mut all_keys = Vec::new();
    for _ in 0..50 {
        all_keys = keys_on(&site.page("/console/calls", &boss), "/console/calls/");
        if all_keys.len() == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(all_keys.len(), 2, "{all_keys:?}");
    browser.go(&format!("{console}/console/resellers/{shop}"));
    assert_eq!(browser.all("tr.live-call").len(), 1, "{}", browser.source());
    let own_prefix = format!("/console/resellers/{shop}/calls/");
    let own = keys_on(&browser.source(), &own_prefix);
    assert_eq!(own.len(), 1, "{}", browser.source());
    let rivals = all_keys.iter().find(|key| **key != own[0]).unwrap().clone();
    for path in [
        format!("/console/resellers/{shop}/calls/{rivals}/hangup"),
        format!("/console/resellers/{rival}/calls/{rivals}/hangup"),
    ] {
        assert_eq!(site.post(&path, &clerk, &[("csrf", &csrf)]), 404, "{path}");
    }
    let still = keys_on(&site.page("/console/calls", &boss), "/console/calls/");
    assert_eq!(still.len(), 2, "nothing changed: {still:?}");
    browser.click(".hangup");
    // The rival's call the operator ends.
    let ended = site.post(
        &format!("/console/calls/{rivals}/hangup"),
        &boss,
        &[("csrf", &boss_csrf)],
    );
    assert_eq!(ended, 303);
    for caller in callers {
        let output = caller.join().unwrap();
        assert!(
            output.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            tail(&switch.log_text(), 30)
        );
    }
    let causes: Vec<String> = all_cdrs(&dir)
        .into_iter()
        .filter_map(|cdr| cdr.disconnect_cause)
        .collect();
    assert_eq!(causes, ["operator", "operator"], "{causes:?}");
    assert!(carrier.finish(Duration::from_secs(10)).success());

    // Not there for the clerk: the rival, the operator's pages; the dashboard sends it home.
    for path in [
        format!("/console/resellers/{rival}"),
        "/console/cards".to_owned(),
        format!("/console/accounts/{account}"),
        "/console/users".to_owned(),
    ] {
        browser.go(&format!("{console}{path}"));
        assert!(
            browser.source().contains("Not found"),
            "{path}: {}",
            browser.source()
        );
    }
    let forged = site.post(
        &format!("/console/resellers/{rival}/transfers"),
        &clerk,
        &[
            ("csrf", &csrf),
            ("key", "x"),
            ("number", "15550002222"),
            ("amount", "1"),
        ],
    );
    assert_eq!(forged, 404);
    browser.go(&format!("{console}/console"));
    assert!(
        browser.url().ends_with("/console/resellers"),
        "{}",
        browser.url()
    );
}
