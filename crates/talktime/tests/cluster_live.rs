//! Three switch nodes on one PostgreSQL ledger behind Kamailio's dispatcher (issue 19), run with
//! the shipped example (deploy/kamailio/talktime-cluster.cfg, its listen address and list path
//! replaced): calls spread over the nodes, one card's limit holds across them, a node killed
//! with calls up has its calls billed once by the others after its lease while new calls
//! connect through the others, and a drained node takes no new call, finishes its calls and
//! exits.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::calls::{forwarding_load_config, wait_for_exit, wide_rtp_ports};
use common::prepaid::{self, ConfigFile};
use common::scenario::{BackgroundSipp, render};
use common::{Switch, free_port, options_ping, repo_root, scenario, tail, wait_until};
use talktime_store::{Cdr, CdrFilter};

/// 6.00 a minute in one-second blocks: 0.10 a second.
const PER_SECOND_RATES: &str = "1,USA,6.00,1.00,1,1,0\n";
const BALANCE: i64 = 100_000_000;
const NODES: usize = 3;

/// Kamailio with the shipped cluster configuration, in front of `nodes`.
struct Kamailio {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Kamailio {
    fn start(dir: &Path, nodes: &[&Switch]) -> Kamailio {
        let port = free_port();
        let list = dir.join("talktime-nodes.list");
        let mut entries = String::new();
        for node in nodes {
            entries.push_str(&format!("1 sip:{}\n", node.sip));
        }
        std::fs::write(&list, entries).unwrap();
        let shipped =
            std::fs::read_to_string(repo_root().join("deploy/kamailio/talktime-cluster.cfg"))
                .unwrap();
        assert!(shipped.contains("listen=udp:127.0.0.1:5060"));
        assert!(shipped.contains("/etc/kamailio/talktime-nodes.list"));
        let config = shipped
            .replace(
                "listen=udp:127.0.0.1:5060",
                &format!("listen=udp:127.0.0.1:{port}"),
            )
            .replace("/etc/kamailio/talktime-nodes.list", list.to_str().unwrap());
        let config_path = dir.join("kamailio.cfg");
        std::fs::write(&config_path, config).unwrap();
        let log = dir.join("kamailio.log");
        let child = Command::new("timeout")
            .args(["300", "kamailio", "-f"])
            .arg(&config_path)
            .args(["-DD", "-E", "-x", "tlsf", "-X", "tlsf", "-n", "2", "-Y"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("run kamailio (apt-get install kamailio)");
        let kamailio = Kamailio {
            child,
            address: format!("127.0.0.1:{port}"),
            log,
        };
        // Ready when it relays an OPTIONS to a node and brings back its 200.
        let target = kamailio.address.parse().unwrap();
        assert!(
            wait_until(Duration::from_secs(20), || {
                options_ping(target, Duration::from_millis(300))
                    .is_some_and(|status| status.contains("200"))
            }),
            "kamailio did not relay OPTIONS:\n{}",
            kamailio.log_text()
        );
        kamailio
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SIGTERM to `timeout`, which passes it on; Kamailio's main process ends its children.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// The cluster: node data directories (the first seeds the shared ledger), the nodes, the
/// proxy and the carrier every node routes to.
struct Cluster {
    url: String,
    dirs: Vec<PathBuf>,
    nodes: Vec<Switch>,
    kamailio: Kamailio,
    _carrier: BackgroundSipp,
}

impl Cluster {
    fn start(callers: usize) -> (Cluster, Vec<(i64, String)>) {
        let url = prepaid::postgres_schema("cluster");
        let dirs: Vec<PathBuf> = (0..NODES)
            .map(|index| prepaid::data_dir(&format!("node-{index}")))
            .collect();
        for dir in &dirs {
            prepaid::use_database(dir, &url);
        }
        prepaid::tariff(&dirs[0], "demo", PER_SECOND_RATES);
        let callers = prepaid::forwarded_callers(&dirs[0], callers, BALANCE);
        // Every node of one ledger hashes PINs with the same key.
        for dir in &dirs[1..] {
            std::fs::copy(dirs[0].join("pin.key"), dir.join("pin.key")).unwrap();
        }
        let carrier = BackgroundSipp::uas(280, &scenario("carrier_answer.xml"), &[]);
        let nodes: Vec<Switch> = dirs
            .iter()
            .enumerate()
            .map(|(index, dir)| {
                let config = node_config(&carrier, &url, index).write(dir);
                // 125 port pairs: each node may take all of a card's 100 calls.
                let ports = wide_rtp_ports();
                Switch::start_on(
                    dir,
                    &format!("127.0.0.{}", index + 2),
                    free_port(),
                    &["--config", config.to_str().unwrap(), "--rtp-ports", &ports],
                )
            })
            .collect();
        let kamailio = Kamailio::start(&dirs[0], &nodes.iter().collect::<Vec<_>>());
        let cluster = Cluster {
            url,
            dirs,
            nodes,
            kamailio,
            _carrier: carrier,
        };
        (cluster, callers)
    }

    /// SIPp callers through the proxy to access number 200, one call per caller ID of
    /// `callers` (repeats allowed), at `rate` a second, each hanging up after `hold`.
    fn call(&self, name: &str, callers: &[&str], rate: usize, hold: Duration) -> BackgroundSipp {
        let csv = self.dirs[0].join(format!("{name}.csv"));
        let mut text = String::from("SEQUENTIAL\n");
        for caller in callers {
            text.push_str(caller);
            text.push('\n');
        }
        std::fs::write(&csv, text).unwrap();
        let scenario = render(
            "caller_through_proxy.xml",
            &[("HOLD_MS", &hold.as_millis().to_string())],
        );
        let count = callers.len().to_string();
        BackgroundSipp::start(
            200,
            &[
                "-sf",
                scenario.to_str().unwrap(),
                "-inf",
                csv.to_str().unwrap(),
                "-s",
                "200",
                &self.kamailio.address,
                "-m",
                &count,
                "-l",
                &count,
                "-r",
                &rate.to_string(),
            ],
        )
    }

    /// [`Cluster::call`], waited for: every SIPp call completes.
    fn call_to_the_end(&self, name: &str, callers: &[&str], rate: usize, hold: Duration) {
        let run = self.call(name, callers, rate, hold);
        self.assert_completed(run);
    }

    fn assert_completed(&self, run: BackgroundSipp) {
        let outcome = run.finish(Duration::from_secs(90));
        assert!(outcome.success(), "{}\n{}", outcome.describe(), self.logs());
    }

    /// Calls each node started so far.
    fn started(&self) -> Vec<usize> {
        self.nodes
            .iter()
            .map(|node| node.call_ids().len())
            .collect()
    }

    /// Calls each node has bridged to the carrier so far.
    fn bridged(&self) -> Vec<usize> {
        self.nodes
            .iter()
            .map(|node| node.log_text().matches("mode=Full").count())
            .collect()
    }

    fn cdrs_of(&self, account: i64) -> Vec<Cdr> {
        let store = prepaid::open(&self.dirs[0]);
        let filter = CdrFilter {
            from_ms: 0,
            to_ms: i64::MAX,
            account_id: Some(account),
            carrier: None,
            cause: None,
            destination_prefix: None,
            reseller_tree: None,
        };
        prepaid::runtime()
            .block_on(store.search_cdrs(&filter, None, 1000))
            .unwrap()
            .into_iter()
            .map(|(_, cdr)| cdr)
            .collect()
    }

    fn answered(&self, account: i64) -> Vec<Cdr> {
        self.cdrs_of(account)
            .into_iter()
            .filter(|cdr| cdr.sip_code == Some(200))
            .collect()
    }

    /// What each account paid equals what its CDRs say, once.
    fn assert_charged_once(&self, accounts: &[i64]) {
        for account in accounts {
            let charged: i64 = self
                .cdrs_of(*account)
                .iter()
                .map(|cdr| cdr.total_micros)
                .sum();
            let spent = BALANCE - prepaid::balance(&self.dirs[0], *account);
            assert_eq!(
                spent, charged,
                "account {account} charged once, as its CDRs say"
            );
        }
    }

    fn logs(&self) -> String {
        let mut text = String::new();
        for (index, node) in self.nodes.iter().enumerate() {
            text.push_str(&format!(
                "--- node-{index}\n{}\n",
                tail(&node.log_text(), 25)
            ));
        }
        text.push_str(&format!(
            "--- kamailio\n{}",
            tail(&self.kamailio.log_text(), 25)
        ));
        text
    }

    fn nodes_list(&self) -> String {
        let output = Command::new(env!("CARGO_BIN_EXE_talktime"))
            .args([
                "nodes",
                "list",
                "--lease-s",
                "3",
                "--database-url",
                &self.url,
            ])
            .arg("--data-dir")
            .arg(&self.dirs[0])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    }
}

fn node_config(carrier: &BackgroundSipp, url: &str, index: usize) -> ConfigFile {
    forwarding_load_config(carrier).raw(&format!(
        "[rtp]\ninactivity_timeout_ms = 120000\n\n[shutdown]\ndrain_s = 30\n\n\
         [database]\nurl = \"{url}\"\n\n\
         [cluster]\nnode_id = \"node-{index}\"\nnode_lease_s = 3\nheartbeat_ms = 500\n"
    ))
}

/// The state `talktime nodes list` gives a node.
fn state_of(list: &str, node: &str) -> String {
    list.lines()
        .find(|line| line.split_whitespace().next() == Some(node))
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or("missing")
        .to_owned()
}

#[test]
fn three_nodes_behind_kamailio_share_one_ledger_survive_a_kill_and_drain() {
    let (mut cluster, callers) = Cluster::start(17);
    let accounts: Vec<i64> = callers.iter().map(|(account, _)| *account).collect();
    let number = |index: usize| callers[index].1.as_str();

    // 1. One card, 100 calls at once spread over the three nodes: exactly one connects.
    cluster.call_to_the_end("one-card", &[number(0); 100], 100, Duration::from_secs(6));
    let started = cluster.started();
    assert_eq!(started.iter().sum::<usize>(), 100, "{started:?}");
    assert!(
        started.iter().all(|calls| *calls >= 10),
        "Kamailio spreads the calls over every node: {started:?}"
    );
    let answered = cluster.answered(accounts[0]);
    assert_eq!(
        answered.len(),
        1,
        "one call of the card connected: {answered:?}"
    );
    cluster.assert_charged_once(&accounts[..1]);

    // 2. Six long calls (two a node), then node-2 is killed.
    let before = cluster.bridged();
    let long_callers: Vec<&str> = (1..=6).map(number).collect();
    let long_run = cluster.call("long", &long_callers, 6, Duration::from_secs(40));
    assert!(
        wait_until(Duration::from_secs(30), || {
            let bridged = cluster.bridged();
            (0..NODES).all(|node| bridged[node] >= before[node] + 2)
        }),
        "every node carries two calls: {:?} -> {:?}\n{}",
        before,
        cluster.bridged(),
        cluster.logs()
    );
    let ids_of_victim: Vec<String> = cluster.nodes[2].call_ids();
    cluster.nodes[2].child.kill().unwrap();
    cluster.nodes[2].child.wait().unwrap();
    let killed_at = Instant::now();

    // New calls still connect, through the two others.
    let started_before = cluster.started();
    let after_kill: Vec<&str> = (7..=12).map(number).collect();
    cluster.call_to_the_end("after-kill", &after_kill, 6, Duration::from_secs(2));
    for account in &accounts[7..=12] {
        assert_eq!(
            cluster.answered(*account).len(),
            1,
            "account {account} connected after the kill\n{}",
            cluster.logs()
        );
    }
    let started_after = cluster.started();
    assert_eq!(
        started_after[0] + started_after[1] - started_before[0] - started_before[1],
        6,
        "the survivors took the new calls: {started_before:?} -> {started_after:?}"
    );

    // The dead node's two calls are billed once by the survivors after its 3 s lease.
    let lost_calls = || -> Vec<Cdr> {
        accounts[1..=6]
            .iter()
            .flat_map(|account| cluster.cdrs_of(*account))
            .filter(|cdr| cdr.disconnect_cause.as_deref() == Some("node_lost"))
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(20), || {
            lost_calls().len() == 2
                && prepaid::all_open_reservations(&cluster.dirs[0], &accounts[1..=6]) == 4
        }),
        "node-2's calls billed by the survivors:\n{}",
        cluster.logs()
    );
    let lost = lost_calls();
    assert!(
        lost.iter().all(|cdr| ids_of_victim
            .iter()
            .any(|id| cdr.call_id.starts_with(id.as_str()))),
        "the billed calls are node-2's"
    );
    assert!(killed_at.elapsed() < Duration::from_secs(40));
    let list = cluster.nodes_list();
    assert_eq!(state_of(&list, "node-2"), "dead", "{list}");
    assert_eq!(state_of(&list, "node-0"), "up", "{list}");

    // 3. node-0 is drained with its two calls up: it answers 503 to the proxy's probe, new
    // calls go to node-1, node-0 keeps its calls until the callers hang up, then exits.
    let drained = Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args(["nodes", "drain", "node-0", "--database-url", &cluster.url])
        .arg("--data-dir")
        .arg(&cluster.dirs[0])
        .output()
        .unwrap();
    assert!(drained.status.success(), "{drained:?}");
    let node_0 = cluster.nodes[0].sip;
    assert!(
        wait_until(Duration::from_secs(5), || {
            options_ping(node_0, Duration::from_millis(300))
                .is_some_and(|status| status.contains("503"))
        }),
        "a draining node answers OPTIONS with 503"
    );
    assert_eq!(state_of(&cluster.nodes_list(), "node-0"), "draining");
    let started_before = cluster.started();
    let after_drain: Vec<&str> = (13..=16).map(number).collect();
    cluster.call_to_the_end("after-drain", &after_drain, 4, Duration::from_secs(2));
    for account in &accounts[13..=16] {
        assert_eq!(cluster.answered(*account).len(), 1, "account {account}");
    }
    let started_after = cluster.started();
    assert_eq!(
        started_after[0], started_before[0],
        "the drained node took no new call"
    );
    assert_eq!(started_after[1], started_before[1] + 4);
    assert!(
        cluster.nodes[0].is_running(),
        "node-0 still carries its calls"
    );

    // The long callers hang up: node-0 bills its calls and exits by itself.
    cluster.assert_completed(long_run);
    let status = wait_for_exit(&mut cluster.nodes[0], Duration::from_secs(20));
    assert!(
        status.is_some_and(|status| status.success()),
        "the drained node exits 0 when its calls have ended: {status:?}\n{}",
        cluster.logs()
    );
    assert_eq!(state_of(&cluster.nodes_list(), "node-0"), "stopped");
    let normal = accounts[1..=6]
        .iter()
        .flat_map(|account| cluster.answered(*account))
        .filter(|cdr| cdr.disconnect_cause.as_deref() != Some("node_lost"))
        .count();
    assert_eq!(
        normal, 4,
        "the four surviving long calls ended by their callers"
    );
    assert_eq!(
        prepaid::all_open_reservations(&cluster.dirs[0], &accounts),
        0
    );
    cluster.assert_charged_once(&accounts);
}
