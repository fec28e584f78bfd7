//! SIP over TLS and HTTPS (issue 18) with real TLS peers: baresip (Debian's, on libre and
//! OpenSSL) calls the switch's TLS listener, keys a PIN and a number, and is connected to a
//! second baresip that answers over TLS; a third carrier presents a certificate that does not
//! chain to the configured CA and is refused before anything is sent to it. The admin API
//! answers over HTTPS (checked with curl against the CA), and a new certificate is taken on
//! SIGHUP without a restart. Certificates come from the openssl command line.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::baresip::Baresip;
use common::calls::{only_call_id, signal, start};
use common::certs::Certificates;
use common::prepaid::{self, ConfigFile};
use common::{free_port, tail};

const PIN: &str = "6106106101";

/// The PIN, then a US number, keyed 250 ms apart from 2 s after the answer.
fn keys() -> Vec<(Duration, String)> {
    let mut at = Duration::from_millis(2_000);
    let mut keys = Vec::new();
    for key in format!("{PIN}#").chars() {
        keys.push((at, key.to_string()));
        at += Duration::from_millis(250);
    }
    at += Duration::from_millis(1_500);
    for key in "0015551234567#".chars() {
        keys.push((at, key.to_string()));
        at += Duration::from_millis(250);
    }
    keys
}

fn tls_carrier(name: &str, port: u16, extra: &str) -> String {
    format!(
        "[[carriers]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         transport = \"tls\"\noptions_interval_ms = 0\ninvite_timeout_ms = 6000\n{extra}\n"
    )
}

/// An answering baresip with a TLS listener presenting `certificate`.
fn answering_phone(dir: &Path, certificate: &str) -> Baresip {
    Baresip::start_with(
        dir,
        &format!("sip_certificate {certificate}\n"),
        "<sip:15551234567@127.0.0.1>;regint=0;answermode=auto",
    )
}

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["-s", "-f", "--max-time", "5"])
        .args(args)
        .output()
        .expect("curl")
}

#[test]
fn a_softphone_calls_over_tls_to_a_tls_carrier_and_a_wrong_certificate_is_refused() {
    let dir = prepaid::data_dir("tls");
    let certificates = Certificates::make(&dir.join("certs"));
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    let account = prepaid::card(&dir, PIN, 2_000_000, 0);

    let rogue = answering_phone(&dir.join("rogue"), &certificates.path("rogue-both.pem"));
    let secure = answering_phone(&dir.join("secure"), &certificates.path("carrier-both.pem"));
    let tls_port = free_port();
    let settings = ConfigFile::new()
        .raw(&format!(
            "[sip]\ntls = [\"127.0.0.1:{tls_port}\"]\n\n[admin]\ntls = true\n\n\
             [tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nca_file = \"{}\"\n\
             reload_check_s = 0\n",
            certificates.path("server.pem"),
            certificates.path("server.key"),
            certificates.path("ca.pem"),
        ))
        .raw(&tls_carrier("impostor", rogue.sip_port + 1, ""))
        .raw(&tls_carrier(
            "secure",
            secure.sip_port + 1,
            "tls_server_name = \"localhost\"",
        ))
        .routes(&[("", &["impostor", "secure"])]);
    let switch = start(&dir, settings);

    let caller = Baresip::start_with(
        &dir.join("caller"),
        &format!("sip_cafile {}\n", certificates.path("ca.pem")),
        "<sip:caller@127.0.0.1;transport=tls>;regint=0",
    );
    caller.dial(&format!("sip:100@127.0.0.1:{tls_port};transport=tls"));
    assert!(
        caller.wait_for("Call established", Duration::from_secs(10)),
        "the switch answers the softphone over TLS:\n{}\nswitch:\n{}",
        caller.log_text(),
        tail(&switch.log_text(), 30)
    );
    caller.keys(Instant::now(), &keys());
    assert!(
        secure.wait_for("Call established", Duration::from_secs(20)),
        "the TLS carrier answers:\n{}\nswitch:\n{}",
        secure.log_text(),
        tail(&switch.log_text(), 40)
    );
    std::thread::sleep(Duration::from_secs(2));
    caller.send("/hangup\n");
    assert!(
        secure.wait_for("terminated", Duration::from_secs(10)),
        "the carrier gets the BYE over TLS:\n{}",
        secure.log_text()
    );

    // The impostor's certificate does not chain to the CA: no INVITE reached it.
    let log = switch.log_text();
    assert!(log.contains("TLS handshake failed"), "{}", tail(&log, 40));
    assert!(
        !rogue.log_text().contains("Incoming call"),
        "{}",
        rogue.log_text()
    );
    let reservation = format!("{}#1", only_call_id(&switch));
    let cdrs = prepaid::wait_for_cdrs(&dir, &reservation, 2);
    assert_eq!(cdrs[0].carrier.as_deref(), Some("impostor"));
    assert_eq!(cdrs[0].answer_ms, None);
    let answered: Vec<_> = cdrs.iter().filter(|cdr| cdr.answer_ms.is_some()).collect();
    assert_eq!(answered.len(), 1, "{cdrs:?}");
    assert_eq!(answered[0].carrier.as_deref(), Some("secure"));
    assert!(answered[0].total_micros > 0);
    assert_eq!(
        prepaid::balance(&dir, account),
        2_000_000 - answered[0].total_micros
    );

    // HTTPS: the health check answers for the CA's certificate, and plain HTTP does not.
    let admin = switch.admin.to_string();
    let https = curl(&[
        "--cacert",
        &certificates.path("ca.pem"),
        &format!("https://localhost:{}/api/health", switch.admin.port()),
        "--resolve",
        &format!("localhost:{}:127.0.0.1", switch.admin.port()),
    ]);
    assert!(https.status.success(), "{https:?}");
    assert!(
        String::from_utf8_lossy(&https.stdout).contains("\"ok\""),
        "{https:?}"
    );
    let plain = curl(&[&format!("http://{admin}/api/health")]);
    assert!(!plain.status.success() || plain.stdout.is_empty());

    // A renewed certificate is taken on SIGHUP, without a restart.
    let served_before = served_fingerprint(switch.admin.port());
    std::fs::copy(
        certificates.dir.join("renewed.pem"),
        certificates.dir.join("server.pem"),
    )
    .unwrap();
    std::fs::copy(
        certificates.dir.join("renewed.key"),
        certificates.dir.join("server.key"),
    )
    .unwrap();
    signal(&switch, "HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while served_fingerprint(switch.admin.port()) == served_before {
        assert!(
            Instant::now() < deadline,
            "{}",
            tail(&switch.log_text(), 20)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        served_fingerprint(switch.admin.port()),
        certificates.fingerprint("renewed.pem")
    );
    assert!(switch.log_text().contains("TLS certificate reloaded"));
}

/// The SHA-256 of the certificate the server on `port` presents now.
fn served_fingerprint(port: u16) -> String {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null \
             | openssl x509 -noout -fingerprint -sha256"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .rsplit('=')
        .next()
        .unwrap_or_default()
        .replace(':', "")
        .to_lowercase()
}

/// A carrier with a self-signed certificate is reached when its SHA-256 is pinned
/// (`tls_pin_sha256`), and only then: the caller here is SIPp over UDP, the carrier leg TLS.
#[test]
fn a_pinned_self_signed_carrier_is_reached_over_tls() {
    let dir = prepaid::data_dir("tls-pinned");
    let certificates = Certificates::make(&dir.join("certs"));
    prepaid::tariff(&dir, "demo", "1,USA,0.60,0.30,1,1,0\n");
    prepaid::card(&dir, PIN, 2_000_000, 0);
    let carrier = answering_phone(&dir.join("pinned"), &certificates.path("rogue-both.pem"));
    let pin = certificates.fingerprint("rogue.pem");
    let settings = ConfigFile::new()
        .raw(&format!(
            "[tls]\nca_file = \"{}\"\n",
            certificates.path("ca.pem")
        ))
        .raw(&tls_carrier(
            "pinned",
            carrier.sip_port + 1,
            &format!("tls_pin_sha256 = \"{pin}\""),
        ))
        .routes(&[("", &["pinned"])]);
    let switch = start(&dir, settings);
    let output = common::calls::call_and_hang_up(
        &switch,
        &dir,
        &[
            (Duration::from_millis(2000), "6106106101#"),
            (Duration::from_millis(5600), "0015551234567#"),
        ],
        Duration::from_secs(2),
    );
    common::assert_sipp_ok(&output, &switch, "a call to the pinned carrier");
    assert!(
        carrier.wait_for("Call established", Duration::from_secs(5)),
        "{}\nswitch:\n{}",
        carrier.log_text(),
        tail(&switch.log_text(), 30)
    );
    let reservation = format!("{}#1", only_call_id(&switch));
    let cdr = prepaid::wait_for_cdrs(&dir, &reservation, 1).remove(0);
    assert_eq!(cdr.carrier.as_deref(), Some("pinned"));
    assert!(cdr.answer_ms.is_some(), "{cdr:?}");
}
