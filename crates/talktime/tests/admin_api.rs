//! The HTTP admin API of a running switch: token checks, accounts and recharges, card
//! batches, CDRs and the traffic report over a seeded ledger, prompt uploads (sox-made WAV
//! and MP3, a truncated WAV refused).

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::Switch;
use common::prepaid;
use serde_json::Value;
use talktime_pii::Pii;
use talktime_store::Cdr;

struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request with `Connection: close`; the whole answer.
fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> Reply {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(token) = token {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    let (content_type, bytes) = body.unwrap_or(("text/plain", b""));
    head.push_str(&format!(
        "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    ));
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(bytes).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let split = answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("end of headers");
    let headers = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .expect("status code");
    Reply {
        status,
        headers,
        body: answer[split + 4..].to_vec(),
    }
}

fn json_body(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn token(switch: &Switch) -> String {
    std::fs::read_to_string(switch.data_dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_owned()
}

fn seeded_switch(name: &str) -> (Switch, std::path::PathBuf, i64) {
    let dir = prepaid::data_dir(name);
    prepaid::tariff(&dir, "demo", "1,USA,0.10,0.05,60,60,0\n");
    let account = prepaid::card(&dir, "5550001111", 10_000_000, 0);
    (Switch::start_in(&dir, &[]), dir, account)
}

#[test]
fn every_route_but_health_needs_the_token() {
    let (switch, _dir, account) = seeded_switch("admin-token");
    let health = request(switch.admin, "GET", "/api/health", None, None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");

    let path = format!("/api/accounts/{account}");
    let missing = request(switch.admin, "GET", &path, None, None);
    assert_eq!(missing.status, 401);
    assert!(missing.headers.contains("www-authenticate: Bearer"));
    let wrong = request(switch.admin, "GET", &path, Some("not-the-token"), None);
    assert_eq!(wrong.status, 401);
    let right = request(switch.admin, "GET", &path, Some(&token(&switch)), None);
    assert_eq!(right.status, 200, "{}", right.text());
    // The generated token is 32 hex digits, kept for the owner only.
    let token_file = switch.data_dir.join("admin.token");
    assert_eq!(token(&switch).len(), 32);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(token_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "token file mode {mode:o}");
}

#[test]
fn account_recharge_adds_exact_decimal_credit() {
    let (switch, dir, account) = seeded_switch("admin-recharge");
    let token = token(&switch);
    let path = format!("/api/accounts/{account}");
    let shown = request(switch.admin, "GET", &path, Some(&token), None).json();
    assert_eq!(shown["balance"], "10");
    assert_eq!(shown["calls_in_progress"], 0);

    let body = json_body(&serde_json::json!({ "amount": "2.35", "reference": "till-7" }));
    let recharged = request(
        switch.admin,
        "POST",
        &format!("{path}/recharge"),
        Some(&token),
        Some(("application/json", &body)),
    );
    assert_eq!(recharged.status, 200, "{}", recharged.text());
    assert_eq!(recharged.json()["balance"], "12.35");
    assert_eq!(prepaid::balance(&dir, account), 12_350_000);

    // With an Idempotency-Key, a retry (the first answer lost) credits nothing more.
    let keyed = json_body(&serde_json::json!({ "amount": "1.00" }));
    let recharge_keyed = |key: &str| {
        let mut stream = TcpStream::connect(switch.admin).unwrap();
        let head = format!(
            "POST {path}/recharge HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Authorization: Bearer {token}\r\nIdempotency-Key: {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            keyed.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&keyed).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let body = answer.split("\r\n\r\n").nth(1).unwrap().to_owned();
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let first = recharge_keyed("pos-7-0001");
    assert_eq!(
        (first["balance"].clone(), first["replayed"].clone()),
        ("13.35".into(), false.into())
    );
    let retry = recharge_keyed("pos-7-0001");
    assert_eq!(
        (retry["balance"].clone(), retry["replayed"].clone()),
        ("13.35".into(), true.into())
    );
    assert_eq!(prepaid::balance(&dir, account), 13_350_000);

    // A JSON number is not money: refused, balance unchanged.
    let float = json_body(&serde_json::json!({ "amount": 2.35 }));
    let refused = request(
        switch.admin,
        "POST",
        &format!("{path}/recharge"),
        Some(&token),
        Some(("application/json", &float)),
    );
    assert!((400..500).contains(&refused.status), "{}", refused.status);
    let negative = json_body(&serde_json::json!({ "amount": "-5.00" }));
    let refused = request(
        switch.admin,
        "POST",
        &format!("{path}/recharge"),
        Some(&token),
        Some(("application/json", &negative)),
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(prepaid::balance(&dir, account), 13_350_000);

    let unknown = request(
        switch.admin,
        "GET",
        "/api/accounts/999999",
        Some(&token),
        None,
    );
    assert_eq!(unknown.status, 404);
}

#[test]
fn a_card_batch_comes_back_as_csv_with_fresh_pins() {
    let (switch, dir, _account) = seeded_switch("admin-batch");
    let token = token(&switch);
    let body = json_body(&serde_json::json!({
        "name": "shop-12", "count": 3, "value": "5.00", "tariff": "demo", "pin_length": 12
    }));
    let reply = request(
        switch.admin,
        "POST",
        "/api/cards/batches",
        Some(&token),
        Some(("application/json", &body)),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.headers.to_ascii_lowercase().contains("x-batch-id:"));
    let text = reply.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "header and 3 cards:\n{text}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let pin_column = header.iter().position(|name| *name == "pin").unwrap();
    let store = prepaid::open(&dir);
    for line in &lines[1..] {
        let pin = line.split(',').nth(pin_column).unwrap();
        assert_eq!(pin.len(), 12);
        let card = prepaid::runtime()
            .block_on(store.card_by_pin(&Pii::new(pin.to_owned())))
            .unwrap()
            .expect("the PIN is a card in the ledger");
        assert_eq!(prepaid::balance(&dir, card.account_id), 5_000_000);
    }

    let too_many = json_body(&serde_json::json!({ "name": "x", "count": 0, "value": "1.00" }));
    let refused = request(
        switch.admin,
        "POST",
        "/api/cards/batches",
        Some(&token),
        Some(("application/json", &too_many)),
    );
    assert_eq!(refused.status, 400);

    // More cards than a tenth of the PIN space of their length: refused with the reason.
    let too_dense = json_body(&serde_json::json!({
        "name": "dense", "count": 2000, "value": "1.00", "pin_length": 4
    }));
    let refused = request(
        switch.admin,
        "POST",
        "/api/cards/batches",
        Some(&token),
        Some(("application/json", &too_dense)),
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("PIN space"), "{}", refused.text());
}

#[test]
fn a_card_batch_ordered_over_http_carries_its_fees_expiry_and_plan() {
    let (switch, dir, _account) = seeded_switch("admin-batch-plan");
    let token = token(&switch);
    let body = json_body(&serde_json::json!({
        "name": "plan-7", "count": 2, "value": "10.00", "tariff": "demo",
        "activation_fee": "0.39", "expires_on": "2027-06-30",
        "plan": {
            "maintenance_fee": "0.25", "maintenance_every": "30d",
            "package_seconds": 600, "package_prefixes": "1,44", "package_every": "30d"
        }
    }));
    let reply = request(
        switch.admin,
        "POST",
        "/api/cards/batches",
        Some(&token),
        Some(("application/json", &body)),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let text = reply.text();
    let lines: Vec<&str> = text.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let pin_column = header.iter().position(|name| *name == "pin").unwrap();
    let store = prepaid::open(&dir);
    for line in &lines[1..] {
        let pin = line.split(',').nth(pin_column).unwrap();
        let card = prepaid::runtime()
            .block_on(store.card_by_pin(&Pii::new(pin.to_owned())))
            .unwrap()
            .unwrap();
        assert_eq!(card.activation_fee_micros, 390_000);
        // The end of 2027-06-30 UTC.
        assert_eq!(card.expiry.expires_at_ms, Some(1_814_400_000_000));
        let plan = prepaid::runtime()
            .block_on(store.account_plan(card.account_id))
            .unwrap()
            .expect("each card's account has the plan");
        assert_eq!(plan.maintenance_fee_micros, 250_000);
        assert_eq!(plan.maintenance_every_ms, 30 * 86_400_000);
        assert_eq!(plan.package_seconds, 600);
        assert_eq!(plan.package_prefixes, "1,44");
    }

    // A bad plan value is refused with its reason and no batch is made.
    let bad = json_body(&serde_json::json!({
        "name": "plan-8", "count": 1, "value": "1.00",
        "plan": { "maintenance_fee": "0.25", "maintenance_every": "monthly" }
    }));
    let refused = request(
        switch.admin,
        "POST",
        "/api/cards/batches",
        Some(&token),
        Some(("application/json", &bad)),
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(refused.text().contains("monthly"), "{}", refused.text());
}

fn cdr(call_id: &str, carrier: Option<&str>, start_ms: i64, answered_s: Option<i64>) -> Cdr {
    let (answer_ms, end_ms) = match answered_s {
        Some(seconds) => (Some(start_ms + 2_000), start_ms + 2_000 + seconds * 1_000),
        None => (None, start_ms + 3_000),
    };
    Cdr {
        call_id: call_id.into(),
        attempt: 1,
        account_id: None,
        card_id: None,
        caller_id: Some(Pii::new("15551230000".into())),
        access_number: Some("100".into()),
        destination: Pii::new("15557654321".into()),
        carrier: carrier.map(str::to_owned),
        start_ms,
        answer_ms,
        end_ms,
        billed_seconds: answered_s.map_or(0, |seconds| ((seconds + 59) / 60) * 60),
        fees_json: "[]".into(),
        taxes_json: "[]".into(),
        tax_micros: 0,
        total_micros: answered_s.map_or(0, |seconds| ((seconds + 59) / 60) * 100_000),
        buy_cost_micros: answered_s.map_or(0, |seconds| ((seconds + 59) / 60) * 50_000),
        sip_code: Some(if answered_s.is_some() { 200 } else { 486 }),
        q850_cause: Some(if answered_s.is_some() { 16 } else { 17 }),
        hangup_by: Some("caller".into()),
        disconnect_cause: Some(
            if answered_s.is_some() {
                "caller_hung_up"
            } else {
                "busy"
            }
            .into(),
        ),
    }
}

#[test]
fn cdrs_and_traffic_report_over_a_day() {
    let dir = prepaid::data_dir("admin-report");
    prepaid::tariff(&dir, "demo", "1,USA,0.10,0.05,60,60,0\n");
    let day = 1_795_392_000_000; // 2026-11-23T00:00:00Z
    let rows = [
        cdr("a", Some("alpha"), day + 1_000, Some(90)),
        cdr("b", Some("alpha"), day + 2_000, Some(30)),
        cdr("c", Some("alpha"), day + 3_000, None),
        cdr("d", Some("beta"), day + 4_000, Some(60)),
        cdr("e", Some("beta"), day + 86_400_000, Some(60)), // the next day
    ];
    let store = prepaid::open(&dir);
    prepaid::runtime().block_on(async {
        for row in &rows {
            assert!(store.write_cdr(row, day).await.unwrap());
        }
    });
    let switch = Switch::start_in(&dir, &[]);
    let token = token(&switch);

    let listed = request(
        switch.admin,
        "GET",
        "/api/cdrs?from=2026-11-23&to=2026-11-24",
        Some(&token),
        None,
    );
    assert_eq!(listed.status, 200, "{}", listed.text());
    let listed = listed.json();
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["call_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c", "d"]);
    assert_eq!(listed[0]["total"], "0.2");
    assert_eq!(listed[2]["disconnect_cause"], "busy");

    let report = request(
        switch.admin,
        "GET",
        "/api/reports/traffic?from=2026-11-23&to=2026-11-24&by=carrier",
        Some(&token),
        None,
    );
    assert_eq!(report.status, 200, "{}", report.text());
    let report = report.json();
    let alpha = &report[0];
    assert_eq!(alpha["group"], "alpha");
    assert_eq!(alpha["attempts"], 3);
    assert_eq!(alpha["answered"], 2);
    assert_eq!(alpha["asr_percent"], "66.67");
    assert_eq!(alpha["acd_seconds"], "60");
    assert_eq!(alpha["revenue"], "0.3");
    assert_eq!(alpha["cost"], "0.15");
    assert_eq!(alpha["margin"], "0.15");
    let beta = &report[1];
    assert_eq!(beta["group"], "beta");
    assert_eq!(
        (beta["attempts"].clone(), beta["answered"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(report.as_array().unwrap().len(), 2);

    let bad = request(
        switch.admin,
        "GET",
        "/api/reports/traffic?from=2026-11-24&to=2026-11-23",
        Some(&token),
        None,
    );
    assert_eq!(bad.status, 400);
}

/// Every shipped language: the embedded configuration offers them all (access number 500).
fn copy_prompts(to: &Path) {
    let shipped = std::fs::read_dir(common::repo_root().join("prompts")).unwrap();
    for language in shipped.flatten().filter(|entry| entry.path().is_dir()) {
        let language = language.file_name();
        let from = common::repo_root().join("prompts").join(&language);
        std::fs::create_dir_all(to.join(&language)).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            std::fs::copy(entry.path(), to.join(&language).join(entry.file_name())).unwrap();
        }
    }
}

fn sox(arguments: &[&str]) {
    let status = Command::new("sox")
        .args(arguments)
        .status()
        .expect("sox runs");
    assert!(status.success(), "sox {arguments:?}");
}

#[test]
fn prompts_are_decoded_before_they_are_stored() {
    let dir = prepaid::data_dir("admin-prompts");
    let prompts = dir.join("prompts");
    copy_prompts(&prompts);
    let switch = Switch::start_in(&dir, &["--prompts-dir", prompts.to_str().unwrap()]);
    let token = token(&switch);
    let wav = dir.join("stereo48k.wav");
    let mp3 = dir.join("tone.mp3");
    sox(&[
        "-n",
        "-r",
        "48000",
        "-c",
        "2",
        "-b",
        "16",
        wav.to_str().unwrap(),
        "synth",
        "1.5",
        "sine",
        "440",
    ]);
    sox(&[
        "-n",
        "-r",
        "8000",
        "-c",
        "1",
        mp3.to_str().unwrap(),
        "synth",
        "1",
        "sine",
        "440",
    ]);
    let wav_bytes = std::fs::read(&wav).unwrap();

    let stored = request(
        switch.admin,
        "PUT",
        "/api/prompts/en/promo",
        Some(&token),
        Some(("audio/wav", &wav_bytes)),
    );
    assert_eq!(stored.status, 201, "{}", stored.text());
    let stored = stored.json();
    assert_eq!(stored["prompt"], "en/promo");
    assert_eq!(stored["format"], "wav");
    assert_eq!(stored["duration_ms"], 1500);
    assert_eq!(
        std::fs::read(prompts.join("en/promo.wav")).unwrap(),
        wav_bytes
    );

    // The same prompt as MP3 (sent as "audio/wav": the content decides) replaces the WAV.
    let mp3_bytes = std::fs::read(&mp3).unwrap();
    let replaced = request(
        switch.admin,
        "PUT",
        "/api/prompts/en/promo",
        Some(&token),
        Some(("audio/wav", &mp3_bytes)),
    );
    assert_eq!(replaced.status, 201, "{}", replaced.text());
    assert_eq!(replaced.json()["format"], "mp3");
    assert!(prompts.join("en/promo.mp3").exists());
    assert!(!prompts.join("en/promo.wav").exists());

    // A truncated WAV is refused with the decoder's reason and nothing is written.
    let truncated = &wav_bytes[..wav_bytes.len() / 2];
    let refused = request(
        switch.admin,
        "PUT",
        "/api/prompts/es/broken",
        Some(&token),
        Some(("audio/wav", truncated)),
    );
    assert_eq!(refused.status, 422);
    assert!(
        refused.json()["error"].as_str().unwrap().contains("WAV"),
        "{}",
        refused.text()
    );
    assert!(!prompts.join("es/broken.wav").exists());

    let unknown_language = request(
        switch.admin,
        "PUT",
        "/api/prompts/xx/promo",
        Some(&token),
        Some(("audio/wav", &wav_bytes)),
    );
    assert_eq!(unknown_language.status, 404);
    let bad_name = request(
        switch.admin,
        "PUT",
        "/api/prompts/en/..%2Fescape",
        Some(&token),
        Some(("audio/wav", &wav_bytes)),
    );
    assert_eq!(bad_name.status, 400);
    assert!(switch.log_text().contains("prompt uploaded"));

    // An MP3 of 11 minutes (660 KB) is refused: decoding stops at the
    // 10-minute cap instead of expanding it (issue 20).
    let long = dir.join("long.mp3");
    sox(&[
        "-n",
        "-r",
        "8000",
        "-c",
        "1",
        "-C",
        "8",
        long.to_str().unwrap(),
        "synth",
        "660",
        "sine",
        "300",
    ]);
    let long_bytes = std::fs::read(&long).unwrap();
    let too_long = request(
        switch.admin,
        "PUT",
        "/api/prompts/en/long",
        Some(&token),
        Some(("audio/mpeg", &long_bytes)),
    );
    assert_eq!(too_long.status, 422, "{}", too_long.text());
    assert!(
        too_long.json()["error"].as_str().unwrap().contains("600 s"),
        "{}",
        too_long.text()
    );
    assert!(!prompts.join("en/long.mp3").exists());
}

/// Reads until the server closes the connection (or 10 s pass); the bytes and how long it
/// took.
fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, Duration) {
    let start = std::time::Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    (answer, start.elapsed())
}

/// Slow and greedy clients (issue 20): headers that never end are cut at the header timeout,
/// a body that never comes gets 408 at the request timeout, a fifth connection from one
/// address is closed at once, and the API still answers afterwards.
#[test]
fn slow_and_greedy_http_clients_are_cut_off() {
    let dir = prepaid::data_dir("admin-slow-clients");
    let limits = dir.join("limits.toml");
    std::fs::write(
        &limits,
        "[admin]\nmax_connections_per_host = 4\nheader_timeout_ms = 2500\n\
         request_timeout_ms = 1500\n",
    )
    .unwrap();
    let switch = Switch::start_in(&dir, &["--config", limits.to_str().unwrap()]);
    let token = token(&switch);

    let mut slow_headers = TcpStream::connect(switch.admin).unwrap();
    slow_headers
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let (answer, took) = read_until_closed(&mut slow_headers);
    assert!(
        took >= Duration::from_millis(2400) && took < Duration::from_secs(6),
        "{took:?} {answer:?}"
    );

    let mut slow_body = TcpStream::connect(switch.admin).unwrap();
    let head = format!(
        "PUT /api/prompts/en/welcome HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: audio/wav\r\nContent-Length: 100000\r\n\r\nRIFF"
    );
    slow_body.write_all(head.as_bytes()).unwrap();
    let (answer, took) = read_until_closed(&mut slow_body);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_secs(5),
        "{took:?}"
    );

    // Four connections the switch has certainly accepted: each got an answer and stays open
    // (keep-alive), so the check below does not depend on how busy the machine is.
    let held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut stream = TcpStream::connect(switch.admin).unwrap();
            stream
                .write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut answer = Vec::new();
            let mut buffer = [0u8; 512];
            while !String::from_utf8_lossy(&answer).contains("\"status\"") {
                let read = stream.read(&mut buffer).unwrap();
                assert!(read > 0, "closed before answering");
                answer.extend_from_slice(&buffer[..read]);
            }
            stream
        })
        .collect();
    let mut fifth = TcpStream::connect(switch.admin).unwrap();
    let (answer, took) = read_until_closed(&mut fifth);
    assert!(answer.is_empty(), "{answer:?}");
    assert!(took < Duration::from_millis(800), "{took:?}");
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let health = request(switch.admin, "GET", "/api/health", None, None);
    assert_eq!(health.status, 200);
}

/// The CDR export streams every selected row, page after page, newest first, as CSV: 2,345
/// rows are more than two of its pages; a bad date is refused before anything is sent.
#[test]
fn the_cdr_export_streams_every_row_of_a_search() {
    let dir = prepaid::data_dir("admin-cdr-export");
    prepaid::tariff(&dir, "demo", "1,USA,0.10,0.05,60,60,0\n");
    let day = 1_795_392_000_000; // 2026-11-23T00:00:00Z
    let store = prepaid::open(&dir);
    prepaid::runtime().block_on(async {
        for index in 0..2_345i64 {
            let carrier = if index % 5 == 0 { "beta" } else { "alpha" };
            let row = cdr(
                &format!("call-{index}"),
                Some(carrier),
                day + index * 1_000,
                Some(61),
            );
            assert!(store.write_cdr(&row, day).await.unwrap());
        }
        // Another day, outside the search.
        let row = cdr("later", Some("alpha"), day + 86_400_000, Some(1));
        assert!(store.write_cdr(&row, day).await.unwrap());
    });
    let switch = Switch::start_in(&dir, &[]);
    let token = token(&switch);
    let export = |query: &str| {
        let output = std::process::Command::new("curl")
            .args(["-s", "--max-time", "30", "-w", "\n%{http_code}", "-H"])
            .arg(format!("authorization: Bearer {token}"))
            .arg(format!("http://{}/api/cdrs/export?{query}", switch.admin))
            .output()
            .unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        let (body, status) = text.rsplit_once('\n').unwrap();
        (status.to_owned(), body.to_owned())
    };
    let (status, body) = export("from=2026-11-23&to=2026-11-24");
    assert_eq!(status, "200", "{body}");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 2_346, "a header and every row");
    assert!(
        lines[0].starts_with("call_id,attempt,account_id"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("call-2344,1,"),
        "newest first: {}",
        lines[1]
    );
    assert!(lines[2_345].starts_with("call-0,1,"), "{}", lines[2_345]);
    assert!(
        lines[1].contains(",15557654321,alpha,") && lines[1].contains(",0.2,"),
        "{}",
        lines[1]
    );
    let (status, body) = export("from=2026-11-23&to=2026-11-24&carrier=beta");
    assert_eq!(status, "200");
    assert_eq!(body.lines().count(), 1 + 469);
    let (status, body) = export("from=yesterday");
    assert_eq!(status, "400", "{body}");
    assert!(body.contains("from"), "{body}");
}

#[test]
fn vouchers_are_made_and_redeemed_once_over_http() {
    let (switch, dir, account) = seeded_switch("admin-vouchers");
    let token = token(&switch);
    let post = |path: &str, body: Value| {
        let bytes = json_body(&body);
        request(
            switch.admin,
            "POST",
            path,
            Some(&token),
            Some(("application/json", &bytes)),
        )
    };
    let made = post(
        "/api/vouchers/batches",
        serde_json::json!({ "name": "till 7", "count": 2, "value": "2.50" }),
    );
    assert_eq!(made.status, 200, "{}", made.text());
    let made = made.json();
    let code = made["vouchers"][0]["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 12);
    let euros = post(
        "/api/vouchers/batches",
        serde_json::json!({ "name": "eu", "count": 1, "value": "1", "currency": "EUR" }),
    )
    .json();
    let euro_code = euros["vouchers"][0]["code"].as_str().unwrap().to_owned();

    let redeem = format!("/api/accounts/{account}/recharge/voucher");
    let credited = post(&redeem, serde_json::json!({ "code": code }));
    assert_eq!(credited.status, 200, "{}", credited.text());
    assert_eq!(credited.json()["balance"], "12.5");
    let again = post(&redeem, serde_json::json!({ "code": code }));
    assert_eq!(again.status, 409, "{}", again.text());
    let unknown = post(&redeem, serde_json::json!({ "code": "000000000000" }));
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    let other_currency = post(&redeem, serde_json::json!({ "code": euro_code }));
    assert_eq!(other_currency.status, 422, "{}", other_currency.text());
    assert_eq!(prepaid::balance(&dir, account), 12_500_000);

    let batch = made["batch_id"].as_i64().unwrap();
    let listed = request(
        switch.admin,
        "GET",
        &format!("/api/vouchers/batches/{batch}"),
        Some(&token),
        None,
    );
    assert_eq!(listed.status, 200);
    let listed = listed.json();
    assert_eq!(listed[0]["used_by_account_id"], account);
    assert!(
        !listed.to_string().contains(&code),
        "codes are never listed"
    );
    let second = listed[1]["id"].as_i64().unwrap();
    let disabled = post(&format!("/api/vouchers/{second}/disable"), Value::Null);
    assert_eq!(disabled.status, 204, "{}", disabled.text());
    let used = listed[0]["id"].as_i64().unwrap();
    let not_again = post(&format!("/api/vouchers/{used}/disable"), Value::Null);
    assert_eq!(not_again.status, 404, "a used voucher stays used");
}
