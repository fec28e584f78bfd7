//! Test support: start the real `talktime` binary on free loopback ports and drive it with
//! SIPp or raw UDP. Every process is bounded in time and killed on drop.

#![allow(dead_code)]

pub mod baresip;
pub mod browser;
pub mod calls;
pub mod certs;
pub mod mail;
pub mod pcap;
pub mod prepaid;
pub mod scenario;

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The repository root (scenario files live in tests/sipp/).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn scenario(name: &str) -> PathBuf {
    repo_root().join("tests/sipp").join(name)
}

/// A UDP port that is also free on TCP at the moment of asking, chosen by the kernel (its
/// ephemeral range) and never handed out twice by one test process. (A counter over a fixed
/// low range was tried and dropped: carriers started on its ports went unanswered in about
/// one full run in two, for reasons not found; the kernel's choice has a long clean record.)
pub fn free_port() -> u16 {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    for _ in 0..200 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind probe socket");
        let port = udp.local_addr().expect("probe address").port();
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let mut given = GIVEN
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if given.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
    panic!("no free loopback port found");
}

/// A media port for SIPp (`-mp`): SIPp binds it and the port two above it (its "video"
/// socket), so one free port is not enough; a run failed when the kernel had handed the
/// port two above to another test. Blocks of four in 4000-7999, below every other range the
/// tests use (switches' RTP from 10000, the kernel's ephemeral ports from 32768), leased
/// like the switches' RTP blocks and kept for the life of the test process.
pub fn sipp_media_port() -> u16 {
    let (first, leases) = lease_ports(4_000, 4, 1_000, 1);
    static HELD: std::sync::Mutex<Vec<TcpListener>> = std::sync::Mutex::new(Vec::new());
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend(leases);
    first
}

/// `count` RTP ports in 10000-19999 that no other switch of this test process gets (a
/// counter walks the range): two switches sharing ports would fail calls whose ports the
/// other holds (the switch does not try other ports once its SDP is out).
pub fn rtp_window(count: u16) -> String {
    const BLOCK: u16 = 250;
    let blocks = count.div_ceil(BLOCK).max(1);
    let (first, leases) = lease_ports(10_000, BLOCK, 10_000 / BLOCK, blocks);
    // Windows are few: kept for the life of the test process.
    static HELD: std::sync::Mutex<Vec<TcpListener>> = std::sync::Mutex::new(Vec::new());
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend(leases);
    format!("{first}-{}", first + count - 1)
}

/// `blocks` consecutive blocks of `size` ports from `base` (of `slots` blocks) that no other
/// switch gets, in this test process or another: the two lanes of `tests/run-all` run test
/// binaries at once, each with its own switches. A block is ours while we hold a TCP listener
/// on its first port; the switch's RTP is UDP, so the listener never gets in its way.
fn lease_ports(base: u16, size: u16, slots: u16, blocks: u16) -> (u16, Vec<TcpListener>) {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % u32::from(slots)) as u16;
    for _ in 0..slots {
        let slot = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % slots;
        if slot + blocks > slots {
            continue;
        }
        let leases: Vec<TcpListener> = (slot..slot + blocks)
            .map_while(|block| TcpListener::bind(("127.0.0.1", base + block * size)).ok())
            .collect();
        if leases.len() == usize::from(blocks) {
            return (base + slot * size, leases);
        }
    }
    panic!("no free block of ports in {base}-{}", base + slots * size);
}

/// 100 RTP ports for a switch in 20000-31999 (below the ephemeral range) that no other switch
/// has, and the lease that keeps it so while the switch lives.
fn rtp_block() -> (u16, TcpListener) {
    let (first, mut leases) = lease_ports(20_000, 100, 120, 1);
    (first, leases.remove(0))
}

/// A running switch; killed when dropped.
pub struct Switch {
    pub child: Child,
    pub sip: SocketAddr,
    /// The HTTP admin API (token in `<data_dir>/admin.token`).
    pub admin: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// Holds the switch's RTP block against other tests' switches.
    _rtp_lease: Option<TcpListener>,
}

impl Switch {
    pub fn start(extra: &[&str]) -> Switch {
        let data_dir = std::env::temp_dir().join(format!(
            "talktime-test-{}-{}",
            std::process::id(),
            free_port()
        ));
        Switch::start_in(&data_dir, extra)
    }

    /// Starts the switch on an existing (perhaps pre-seeded) data directory.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Switch {
        Switch::launch(data_dir, "127.0.0.1", None, extra, "debug")
    }

    /// [`Switch::start_at`] with its own `RUST_LOG` (the log tests run at trace level).
    pub fn start_logging(data_dir: &Path, extra: &[&str], rust_log: &str) -> Switch {
        Switch::launch(data_dir, "127.0.0.1", None, extra, rust_log)
    }

    /// A switch on its own loopback address (`127.0.0.2`: a cluster node), SIP on `port`.
    pub fn start_on(data_dir: &Path, host: &str, port: u16, extra: &[&str]) -> Switch {
        Switch::launch(data_dir, host, Some(port), extra, "debug")
    }

    /// [`Switch::start_in`] on a given SIP port (a restart where the last run was).
    pub fn start_at(data_dir: &Path, port: u16, extra: &[&str]) -> Switch {
        Switch::launch(data_dir, "127.0.0.1", Some(port), extra, "debug")
    }

    /// Starts the switch and waits for it. A port another test process took in the meantime
    /// (a restart on the old port after a kill, with other tests' probes and peers picking
    /// ephemeral ports beside it) makes the switch exit at once: it is started again for a
    /// while, until the other holder lets go. A switch that may take any port (`port` None)
    /// takes another free one instead of waiting.
    fn launch(
        data_dir: &Path,
        host: &str,
        port: Option<u16>,
        extra: &[&str],
        rust_log: &str,
    ) -> Switch {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut sip_port = port.unwrap_or_else(free_port);
        loop {
            let mut switch = Switch::spawn(data_dir, host, sip_port, extra, rust_log);
            match switch.wait_until_ready() {
                Ok(()) => return switch,
                Err(log) if log.contains("Address already in use") && Instant::now() < deadline => {
                    let _ = switch.child.wait();
                    match port {
                        Some(_) => std::thread::sleep(Duration::from_millis(500)),
                        None => sip_port = free_port(),
                    }
                }
                Err(log) => panic!("switch did not answer OPTIONS within 60 s; log:\n{log}"),
            }
        }
    }

    fn spawn(data_dir: &Path, host: &str, port: u16, extra: &[&str], rust_log: &str) -> Switch {
        // Below the kernel's ephemeral range (32768+), where SIPp and test sockets land.
        let (rtp, lease) = rtp_block();
        let data_dir = data_dir.to_path_buf();
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        let log = data_dir.join("switch.log");
        let log_file = std::fs::File::create(&log).expect("create log");
        let address = format!("{host}:{port}");
        let admin = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_talktime"));
        command
            .args(["serve", "--sip-udp", &address, "--sip-tcp", &address])
            .args(["--admin-listen", &admin]);
        if !extra.contains(&"--rtp-ports") {
            command.args(["--rtp-ports", &format!("{rtp}-{}", rtp + 99)]);
        }
        // The lane of tests/run-all that runs suites again with the calls over two cores.
        if let Ok(cores) = std::env::var("TALKTIME_TEST_CORE_THREADS")
            && !extra.contains(&"--core-threads")
        {
            command.args(["--core-threads", &cores]);
        }
        command.arg("--data-dir").arg(&data_dir);
        if !extra.contains(&"--prompts-dir") {
            command
                .arg("--prompts-dir")
                .arg(repo_root().join("prompts"));
        }
        let child = command
            .args(extra)
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start talktime");
        Switch {
            child,
            sip: address.parse().expect("address"),
            admin: admin.parse().expect("admin address"),
            data_dir,
            log,
            _rtp_lease: Some(lease),
        }
    }

    /// Until the switch answers OPTIONS: after migrations, and after a restart bills what a
    /// crash left up (hundreds of calls on a loaded machine take seconds). The answer counts
    /// only once this process has logged that it is ready: another test process that took the
    /// same port a moment earlier answers OPTIONS too, while ours is failing to bind. The log
    /// when it exited or never answered.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let ready = self.log_text().contains("Talktime ready");
            if ready && options_ping(self.sip, Duration::from_millis(200)).is_some() {
                if self.is_running() {
                    return Ok(());
                }
                return Err(self.log_text());
            }
            if !ready {
                std::thread::sleep(Duration::from_millis(20));
            }
            if !self.is_running() {
                return Err(self.log_text());
            }
        }
        Err(self.log_text())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The SIP Call-IDs of the prepaid calls the switch started, in order (from its log).
    pub fn call_ids(&self) -> Vec<String> {
        self.log_text()
            .lines()
            .filter(|line| line.contains("call started"))
            .filter_map(|line| {
                let start = line.find("call_id=")? + "call_id=".len();
                line[start..].split_whitespace().next().map(str::to_owned)
            })
            .collect()
    }

    /// True while the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one OPTIONS over UDP and returns the status line of the answer, if any.
pub fn options_ping(target: SocketAddr, wait: Duration) -> Option<String> {
    let local = if target.is_ipv6() {
        "[::1]:0"
    } else {
        "127.0.0.1:0"
    };
    let socket = UdpSocket::bind(local).ok()?;
    socket.set_read_timeout(Some(wait)).ok()?;
    let local = socket.local_addr().ok()?;
    let branch = format!("z9hG4bK-ping-{}", Instant::now().elapsed().as_nanos());
    let request = format!(
        "OPTIONS sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={branch}\r\n\
         From: <sip:probe@{local}>;tag=probe\r\nTo: <sip:{target}>\r\nCall-ID: ping-{branch}\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    socket.send_to(request.as_bytes(), target).ok()?;
    let mut buffer = [0u8; 4096];
    let (length, _) = socket.recv_from(&mut buffer).ok()?;
    let text = String::from_utf8_lossy(&buffer[..length]);
    text.lines().next().map(str::to_owned)
}

/// Sends raw bytes over UDP and returns the first answer within `wait`, if any.
pub fn send_raw(target: SocketAddr, bytes: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket.set_read_timeout(Some(wait)).ok()?;
    socket.send_to(bytes, target).ok()?;
    let mut buffer = vec![0u8; 65536];
    let (length, _) = socket.recv_from(&mut buffer).ok()?;
    buffer.truncate(length);
    Some(buffer)
}

/// Runs SIPp under coreutils `timeout` (SIPp's own -timeout does not end stuck calls).
pub fn sipp(seconds: u32, args: &[&str]) -> Output {
    sipp_from("127.0.0.1", seconds, args)
}

/// One call of the scenario at `scenario` to `number` on the switch, SIPp's media on a port
/// of its own, bounded to `seconds`.
pub fn sipp_one_call(seconds: u32, scenario: &Path, number: &str, switch: &Switch) -> Output {
    let media_port = sipp_media_port().to_string();
    let scenario = scenario.to_string_lossy();
    let target = switch.sip.to_string();
    let args = [
        "-sf",
        &scenario,
        "-s",
        number,
        &target,
        "-m",
        "1",
        "-mp",
        &media_port,
    ];
    sipp(seconds, &args)
}

/// [`sipp`] from another loopback address (127.0.0.2, ...): another source for the switch.
pub fn sipp_from(local_ip: &str, seconds: u32, args: &[&str]) -> Output {
    let local_port = free_port().to_string();
    Command::new("timeout")
        .arg(seconds.to_string())
        .arg("sipp")
        .args(["-i", local_ip, "-p", &local_port, "-nostdin"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sipp: is sip-tester installed? (apt-get install sip-tester)")
}

/// Asserts SIPp exited 0 (every call successful), showing its output otherwise.
pub fn assert_sipp_ok(output: &Output, switch: &Switch, what: &str) {
    assert!(
        output.status.success(),
        "{what}: sipp exited with {:?}\nstdout:\n{}\nstderr:\n{}\nswitch log (tail):\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        tail(&switch.log_text(), 60),
    );
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One request to the switch's admin API with its token; the status and the body.
#[allow(clippy::unwrap_used)]
pub fn admin_request(switch: &Switch, method: &str, path: &str, body: &str) -> (u16, String) {
    let token = std::fs::read_to_string(switch.data_dir.join("admin.token")).unwrap();
    api_request(switch, token.trim(), method, path, &[], body)
}

/// One request to the switch's admin API with `token` and extra `headers`.
#[allow(clippy::unwrap_used)]
pub fn api_request(
    switch: &Switch,
    token: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(switch.admin).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\
         {extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        switch.admin,
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Runs `talktime ARGS --data-dir DIR` (the operator's CLI) and returns its standard output,
/// asserting it succeeded.
#[allow(clippy::unwrap_used)]
pub fn cli(dir: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "talktime {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `talktime users add NAME --role ROLE [EXTRA...]` with the password on standard input.
#[allow(clippy::unwrap_used)]
pub fn add_user(dir: &Path, name: &str, role: &str, extra: &[&str], password: &str) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_talktime"))
        .args(["users", "add", name, "--role", role])
        .args(extra)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
}

/// Polls `done` every 100 ms for up to `limit`; whether it came true.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// Every row of a workbook's first sheet as text, read by openpyxl (Debian's python3).
#[allow(clippy::unwrap_used)]
pub fn read_workbook(path: &Path) -> Vec<Vec<String>> {
    let program = "import openpyxl, sys\n\
                   sheet = openpyxl.load_workbook(sys.argv[1]).active\n\
                   for row in sheet.iter_rows(values_only=True):\n    \
                   print('\\t'.join('' if c is None else str(c) for c in row))\n";
    let output = Command::new("/usr/bin/python3")
        .args(["-c", program])
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| line.split('\t').map(str::to_owned).collect())
        .collect()
}
