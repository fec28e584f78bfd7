//! Prepaid test fixtures: a ledger seeded before the switch starts (tariff, cards, caller
//! IDs), a configuration file naming SIPp carriers, and ledger reads for the assertions.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use talktime_billing::{Currency, TariffSettings};
use talktime_pii::Pii;
use talktime_store::{Cdr, ImportOptions, NewCard, Store};

/// The tokio runtime of the ledger calls a synchronous test makes: one for the whole test
/// binary, so a PostgreSQL pool opened in one helper still has its connections' runtime in
/// the next.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::LazyLock<tokio::runtime::Runtime> = std::sync::LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    });
    &RUNTIME
}

/// A fresh data directory for one test.
pub fn data_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "talktime-prepaid-{}-{name}-{}",
        std::process::id(),
        super::free_port()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The test's ledger: the SQLite file in `dir`, or the database [`use_database`] named.
pub fn open(dir: &Path) -> Store {
    let location = std::fs::read_to_string(dir.join(DATABASE_FILE))
        .unwrap_or_else(|_| dir.to_str().unwrap().to_owned());
    open_url(dir, &location)
}

/// The ledger at `location`, with the PIN key the switch of data directory `dir` uses.
pub fn open_url(dir: &Path, location: &str) -> Store {
    let key = talktime_store::PinKey::load_or_create(&dir.join(talktime_store::PIN_KEY_FILE_NAME))
        .unwrap();
    let options = talktime_store::StoreOptions {
        pin_key: Some(key),
        ..talktime_store::StoreOptions::default()
    };
    runtime()
        .block_on(Store::open_with(location, &options))
        .unwrap()
}

const DATABASE_FILE: &str = "test-database-url";

/// Makes every helper of this module use `url` (e.g. a PostgreSQL schema) for `dir`.
pub fn use_database(dir: &Path, url: &str) {
    std::fs::write(dir.join(DATABASE_FILE), url).unwrap();
}

/// A fresh PostgreSQL schema on the test server; its URL.
pub fn postgres_schema(name: &str) -> String {
    let admin = std::env::var("TALKTIME_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("tt_{name}_{}_{}", std::process::id(), super::free_port());
    let created = std::process::Command::new("psql")
        .args([
            admin.as_str(),
            "-q",
            "-c",
            &format!("CREATE SCHEMA {schema}"),
        ])
        .output()
        .expect("psql (postgresql-client) is needed for the PostgreSQL tests");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let separator = if admin.contains('?') { '&' } else { '?' };
    format!("{admin}{separator}options[search_path]={schema}")
}

/// Another program (Python's sqlite3) holding the ledger's write lock for `seconds`, as a
/// long transaction or a backup tool would.
pub fn hold_the_write_lock(dir: &Path, seconds: u32) -> std::process::Child {
    std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys, time\n\
             db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
             db.execute('BEGIN EXCLUSIVE')\n\
             time.sleep(float(sys.argv[2]))\n\
             db.execute('COMMIT')\n",
        )
        .arg(dir.join("talktime.sqlite3"))
        .arg(seconds.to_string())
        .spawn()
        .unwrap()
}

/// Creates the `demo` tariff (so the switch seeds nothing) from CSV rows
/// (`prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee`).
pub fn tariff(dir: &Path, name: &str, rows: &str) -> i64 {
    let settings = TariffSettings {
        currency: Currency::new("USD").unwrap(),
        ..TariffSettings::default()
    };
    tariff_with(dir, name, rows, &settings)
}

/// [`tariff`] with explicit settings (dial plan, rounding, ...).
pub fn tariff_with(dir: &Path, name: &str, rows: &str, settings: &TariffSettings) -> i64 {
    let store = open(dir);
    runtime().block_on(async {
        let tariff = store
            .create_tariff(name, "USD", &settings.to_json(), 0)
            .await
            .unwrap();
        let csv = format!(
            "prefix,description,sell_rate,buy_rate,initial_block,increment,connection_fee\n{rows}"
        );
        let report = store
            .import_tariff_csv(tariff.id, csv.as_bytes(), ImportOptions::default())
            .await
            .unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        tariff.id
    })
}

/// A card with `balance_micros`; returns its account id.
pub fn card(dir: &Path, pin: &str, balance_micros: i64, minimum_for_caller_id: i64) -> i64 {
    let store = open(dir);
    let mut card = NewCard::new(Pii::new(pin.to_owned()), "USD", balance_micros);
    card.caller_id_min_balance_micros = minimum_for_caller_id;
    runtime()
        .block_on(store.create_card(&card, 0))
        .unwrap()
        .account_id
}

pub fn register_caller_id(dir: &Path, account: i64, number: &str) {
    let store = open(dir);
    runtime()
        .block_on(store.register_caller_id(account, &Pii::new(number.to_owned()), 0))
        .unwrap();
}

pub fn forward_to(dir: &Path, account: i64, destination: &str) {
    let store = open(dir);
    runtime()
        .block_on(store.set_forward_destination(account, Some(&Pii::new(destination.to_owned()))))
        .unwrap();
}

pub fn balance(dir: &Path, account: i64) -> i64 {
    runtime().block_on(open(dir).balance(account)).unwrap()
}

/// Every CDR whose reservation key belongs to the SIP call `call_id` prefix, attempt order.
pub fn cdrs(dir: &Path, reservation: &str) -> Vec<Cdr> {
    runtime()
        .block_on(open(dir).cdrs_for_call(reservation))
        .unwrap()
}

/// Waits (up to 5 s) for the settlement task to write at least `rows` CDRs of a reservation.
pub fn wait_for_cdrs(dir: &Path, reservation: &str, rows: usize) -> Vec<Cdr> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let found = cdrs(dir, reservation);
        if found.len() >= rows || std::time::Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

pub fn open_reservations(dir: &Path, account: i64) -> usize {
    runtime()
        .block_on(open(dir).open_reservations(account))
        .unwrap()
        .len()
}

/// A configuration file: access number 100 (English only), the IVR timings the tests need,
/// the carriers (name, address) and dial plan routes (prefix, mode, carriers).
#[derive(Clone)]
pub struct ConfigFile {
    pub text: String,
}

impl ConfigFile {
    pub fn new() -> ConfigFile {
        ConfigFile {
            text: String::from(
                "[demo]\nenabled = false\n\n[ivr]\nlanguages = [\"en\"]\nwarning_lead_ms = 2000\n\
                 inter_digit_timeout_ms = 3000\nfirst_digit_timeout_ms = 8000\n\
                 end_leg_digits = \"**\"\n\n\
                 [[access_numbers]]\nnumber = \"100\"\ndial_plan = \"default\"\n\n\
                 [[access_numbers]]\nnumber = \"200\"\ndial_plan = \"default\"\nforwarding = true\n\n",
            ),
        }
    }

    /// A carrier with a 6 s INVITE timeout: on a loaded 2-core CI machine a SIPp carrier can
    /// take seconds to be scheduled, and a failover the test did not ask for fails it.
    pub fn carrier(self, name: &str, address: &str) -> ConfigFile {
        self.carrier_with_timeout(name, address, 6000)
    }

    /// A carrier given up when it sends no provisional response within `invite_timeout_ms`.
    pub fn carrier_with_timeout(
        mut self,
        name: &str,
        address: &str,
        invite_timeout_ms: u64,
    ) -> ConfigFile {
        let (host, port) = address.rsplit_once(':').unwrap();
        self.text.push_str(&format!(
            "[[carriers]]\nname = \"{name}\"\nhost = \"{host}\"\nport = {port}\n\
             options_interval_ms = 0\ninvite_timeout_ms = {invite_timeout_ms}\n\n"
        ));
        self
    }

    /// Sets one `[ivr]` key (`no_answer_timeout_ms = 4000`), replacing the default's.
    pub fn ivr(mut self, line: &str) -> ConfigFile {
        let key = line.split('=').next().unwrap().trim();
        let mut lines: Vec<&str> = self.text.split('\n').collect();
        lines.retain(|existing| existing.split('=').next().unwrap().trim() != key);
        self.text = lines
            .join("\n")
            .replacen("[ivr]\n", &format!("[ivr]\n{line}\n"), 1);
        self
    }

    /// Raw TOML appended as is.
    pub fn raw(mut self, text: &str) -> ConfigFile {
        self.text.push_str(text);
        self.text.push('\n');
        self
    }

    /// One dial plan `default` with these routes: (prefix, carriers in priority order).
    pub fn routes(mut self, routes: &[(&str, &[&str])]) -> ConfigFile {
        self.text.push_str("[[dial_plans]]\nname = \"default\"\n\n");
        for (prefix, carriers) in routes {
            let list = carriers
                .iter()
                .enumerate()
                .map(|(priority, name)| format!("{{ name = \"{name}\", priority = {priority} }}"))
                .collect::<Vec<_>>()
                .join(", ");
            self.text.push_str(&format!(
                "[[dial_plans.routes]]\nprefix = \"{prefix}\"\nmode = \"priority\"\ncarriers = [{list}]\n\n"
            ));
        }
        self
    }

    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("talktime.toml");
        std::fs::write(&path, &self.text).unwrap();
        path
    }
}

/// `count` pinless accounts with `micros` each, caller IDs `1555777NNNN` registered and
/// forwarded to +15551234567 (access number 200 connects them without a digit), made in one
/// ledger session. Returns (account, caller ID) pairs.
pub fn forwarded_callers(dir: &Path, count: usize, micros: i64) -> Vec<(i64, String)> {
    let store = open(dir);
    runtime().block_on(async {
        let mut made = Vec::with_capacity(count);
        for index in 0..count {
            let pin = format!("77{index:08}");
            let card = NewCard::new(Pii::new(pin), "USD", micros);
            let account = store.create_card(&card, 0).await.unwrap().account_id;
            let caller = format!("1555777{index:04}");
            store
                .register_caller_id(account, &Pii::new(caller.clone()), 0)
                .await
                .unwrap();
            store
                .set_forward_destination(account, Some(&Pii::new("0015551234567".to_owned())))
                .await
                .unwrap();
            made.push((account, caller));
        }
        made
    })
}

/// Open reservations over all accounts.
/// Each node's last heartbeat on `dir`'s ledger.
pub fn node_heartbeats(dir: &Path) -> Vec<i64> {
    let store = open(dir);
    let nodes = runtime().block_on(store.nodes()).unwrap();
    nodes.iter().map(|node| node.heartbeat_ms).collect()
}

pub fn all_open_reservations(dir: &Path, accounts: &[i64]) -> usize {
    let store = open(dir);
    runtime().block_on(async {
        let mut open = 0;
        for account in accounts {
            open += store.open_reservations(*account).await.unwrap().len();
        }
        open
    })
}

/// Where a test's ledger lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Points `dir`'s helpers (and, through the returned TOML, the switch) at this backend:
    /// nothing for SQLite (the file in the data directory), a fresh schema for PostgreSQL.
    /// Call before seeding.
    pub fn prepare(self, dir: &Path, name: &str) -> String {
        match self {
            Backend::Sqlite => String::new(),
            Backend::Postgres => {
                let url = postgres_schema(name);
                use_database(dir, &url);
                format!("[database]\nurl = \"{url}\"\n\n")
            }
        }
    }
}
