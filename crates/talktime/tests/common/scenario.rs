//! SIPp scenario templates (`tests/sipp/*.xml` with `{{KEY}}` placeholders) and SIPp
//! processes that run in the background, such as a carrier UAS the switch calls out to.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static RENDERED: AtomicU32 = AtomicU32::new(0);

/// Reads `tests/sipp/<name>`, fills in every `{{KEY}}` from `values`, and writes the result
/// to a fresh file in the temporary directory. Panics if the template is missing or a
/// placeholder is left unfilled. Values are pasted verbatim: SIPp wants absolute pcap paths.
pub fn render(name: &str, values: &[(&str, &str)]) -> PathBuf {
    let template_path = super::scenario(name);
    let template = std::fs::read_to_string(&template_path)
        .unwrap_or_else(|error| panic!("read scenario {}: {error}", template_path.display()));
    let text = fill(&template, values);
    let left = placeholders(&text);
    assert!(
        left.is_empty(),
        "scenario {name}: no value given for {}",
        left.join(", ")
    );
    let path = std::env::temp_dir().join(format!(
        "talktime-sipp-{}-{}-{name}",
        std::process::id(),
        RENDERED.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, text)
        .unwrap_or_else(|error| panic!("write scenario {}: {error}", path.display()));
    path
}

fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (key, value)| {
            text.replace(&format!("{{{{{key}}}}}"), value)
        })
}

/// The `{{KEY}}` placeholders still in `text`, e.g. `["{{PCAP}}"]`.
fn placeholders(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start..];
        let end = after.find("}}").map_or(after.len(), |end| end + 2);
        let placeholder = after[..end].to_owned();
        if !found.contains(&placeholder) {
            found.push(placeholder);
        }
        rest = &after[end..];
    }
    found
}

/// A SIPp process on loopback started in the background, bounded by coreutils `timeout`,
/// with its screen output in files. Ended (SIGTERM, which `timeout` passes on) when dropped.
#[derive(Debug)]
pub struct BackgroundSipp {
    child: Child,
    /// The SIP port (`-p`).
    pub port: u16,
    /// The media port (`-mp`); `-rtp_echo` listens here.
    pub media_port: u16,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// How a SIPp run ended, with what it printed.
#[derive(Debug)]
pub struct SippRun {
    /// `None` when it was still running at the deadline (and was ended).
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl SippRun {
    pub fn success(&self) -> bool {
        self.status.is_some_and(|status| status.success())
    }

    /// SIPp's exit code: 0 all calls succeeded, 1 some failed, 124 killed by `timeout`.
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|status| status.code())
    }

    pub fn describe(&self) -> String {
        format!(
            "status {:?}\nstdout (tail):\n{}\nstderr:\n{}",
            self.status,
            super::tail(&self.stdout, 40),
            self.stderr
        )
    }
}

impl BackgroundSipp {
    /// Starts `timeout <seconds> sipp -i 127.0.0.1 -p <free> -mp <free> -nostdin <args>`.
    pub fn start(seconds: u32, args: &[&str]) -> BackgroundSipp {
        let port = super::free_port();
        let media_port = super::sipp_media_port();
        let directory = std::env::temp_dir();
        let stem = format!("talktime-sipp-{}-{port}", std::process::id());
        let stdout = directory.join(format!("{stem}.out"));
        let stderr = directory.join(format!("{stem}.err"));
        let child = Command::new("timeout")
            .arg(seconds.to_string())
            .arg("sipp")
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mp", &media_port.to_string(), "-nostdin"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(create(&stdout))
            .stderr(create(&stderr))
            .spawn()
            .expect("run sipp: is sip-tester installed? (apt-get install sip-tester)");
        BackgroundSipp {
            child,
            port,
            media_port,
            stdout,
            stderr,
        }
    }

    /// Starts a UAS from a scenario file: `-sf <scenario> <args>`.
    pub fn uas(seconds: u32, scenario: &Path, args: &[&str]) -> BackgroundSipp {
        let scenario = scenario.to_str().expect("scenario path is UTF-8");
        let mut all = vec!["-sf", scenario];
        all.extend_from_slice(args);
        BackgroundSipp::start(seconds, &all)
    }

    /// `127.0.0.1:<port>`, for a route or for SIPp's remote host argument.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits up to `limit` for the process to end on its own, then ends it.
    pub fn finish(mut self, limit: Duration) -> SippRun {
        let deadline = Instant::now() + limit;
        let mut status = None;
        while Instant::now() < deadline {
            if let Ok(Some(done)) = self.child.try_wait() {
                status = Some(done);
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if status.is_none() {
            self.stop();
        }
        SippRun {
            status,
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr: std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        }
    }

    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SIGTERM to `timeout`, which passes it on to sipp; SIGKILL would orphan sipp.
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
            let _ = self.child.wait();
        }
    }
}

impl Drop for BackgroundSipp {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.stdout);
        let _ = std::fs::remove_file(&self.stderr);
    }
}

fn create(path: &Path) -> std::fs::File {
    std::fs::File::create(path).unwrap_or_else(|error| panic!("create {}: {error}", path.display()))
}
