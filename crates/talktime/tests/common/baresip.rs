//! baresip (Debian's `baresip-core`) as a real softphone caller: headless on loopback, audio
//! from a WAV file (`aufile`), driven through its UDP console (`cons`): `/dial`, key presses
//! sent as RFC 2833 telephone-events, `/hangup`. Killed when dropped.

#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct Baresip {
    child: Child,
    console: SocketAddr,
    pub log: PathBuf,
    /// Its SIP port (UDP and TCP); its TLS listener is on the next one.
    pub sip_port: u16,
}

/// A free port for baresip's SIP whose next port is free for TCP too: baresip binds its TLS
/// transport there, and a taken one stops it at start ("SIP/TLS transport failed").
fn sip_port() -> u16 {
    for _ in 0..50 {
        let port = free_port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    free_port()
}

impl Baresip {
    /// Starts baresip with its configuration in `dir` (a fresh folder of the test's).
    pub fn start(dir: &Path) -> Baresip {
        Baresip::start_with(dir, "", "<sip:caller@127.0.0.1>;regint=0")
    }

    /// [`Baresip::start`] with more configuration lines (`sip_cafile`, `sip_certificate`)
    /// and its own account line (`;answermode=auto` for a callee).
    pub fn start_with(dir: &Path, extra_config: &str, account: &str) -> Baresip {
        std::fs::create_dir_all(dir).unwrap();
        let audio = dir.join("caller.wav");
        write_tone_wav(&audio, Duration::from_secs(120));
        let console: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let rtp = 40_000 + free_port() % 200 * 100;
        let sip = sip_port();
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip}\naudio_source aufile,{audio}\n\
             rtp_ports {rtp}-{rtp_end}\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule account.so\nmodule aufile.so\nmodule cons.so\n\
             module_app menu.so\ncons_listen {console}\n{extra_config}\n",
            audio = audio.display(),
            rtp_end = rtp + 99,
        );
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(dir.join("accounts"), format!("{account}\n")).unwrap();
        let log = dir.join("baresip.log");
        let child = Command::new("timeout")
            .args(["120", "baresip", "-f"])
            .arg(dir)
            .args(["-n", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("run baresip: is baresip-core installed?");
        let phone = Baresip {
            child,
            console,
            log,
            sip_port: sip,
        };
        phone.wait_for("baresip is ready", Duration::from_secs(10));
        phone
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log shows `text`; false when it did not within `limit`.
    pub fn wait_for(&self, text: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.log_text().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// One console command or key press.
    pub fn send(&self, text: &str) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.send_to(text.as_bytes(), self.console).unwrap();
    }

    pub fn dial(&self, uri: &str) {
        self.send(&format!("/dial {uri}\n"));
    }

    /// Presses each key at its time, counted from `since`.
    pub fn keys(&self, since: Instant, keys: &[(Duration, String)]) {
        for (at, key) in keys {
            if let Some(wait) = (since + *at).checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            self.send(key);
        }
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        // SIGTERM to `timeout`, which passes it on to baresip; SIGKILL would orphan baresip,
        // which then lives on, holding its ports and retransmitting to ports later tests get.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while matches!(self.child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 8 kHz mono 16-bit PCM: a quiet 440 Hz tone, so the switch always hears the caller.
fn write_tone_wav(path: &Path, length: Duration) {
    let samples = u32::try_from(length.as_millis() * 8).unwrap();
    let mut bytes = Vec::with_capacity(44 + samples as usize * 2);
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + samples * 2).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&8000u32.to_le_bytes());
    bytes.extend_from_slice(&16000u32.to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&(samples * 2).to_le_bytes());
    // A triangle wave near 400 Hz (20 samples a period), amplitude 1,000: no floats needed.
    for index in 0..samples {
        let phase = i32::try_from(index % 20).unwrap();
        let value = if phase < 10 {
            phase * 200 - 1000
        } else {
            3000 - phase * 200
        };
        bytes.extend_from_slice(&i16::try_from(value).unwrap().to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}
