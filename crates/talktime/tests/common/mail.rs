//! A real SMTP server for the mail tests: Python's aiosmtpd on loopback, writing every mail it
//! takes into a Maildir.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// aiosmtpd on loopback, delivering into `maildir`.
pub struct MailServer {
    child: Child,
}

impl MailServer {
    pub fn start(port: u16, maildir: &Path) -> MailServer {
        MailServer::start_with(port, maildir, &[])
    }

    /// With more aiosmtpd options (`--tlscert`, `--tlskey`: STARTTLS, required).
    pub fn start_with(port: u16, maildir: &Path, options: &[&str]) -> MailServer {
        let listen = format!("127.0.0.1:{port}");
        let mut args = vec!["-m", "aiosmtpd", "-n", "-l", &listen];
        args.extend_from_slice(options);
        args.extend(["-c", "aiosmtpd.handlers.Mailbox", maildir.to_str().unwrap()]);
        let child = Command::new("/usr/bin/python3")
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd is needed for the mail tests");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        MailServer { child }
    }
}

impl Drop for MailServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every mail in the Maildir, as text.
pub fn mails(maildir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.map(|entry| entry.unwrap().path()).collect();
    paths.sort_by_key(|path| std::fs::metadata(path).unwrap().modified().unwrap());
    paths
        .iter()
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect()
}

/// Waits until some mail contains `needle`; all the mails then.
pub fn wait_for_mail(maildir: &Path, needle: &str, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    loop {
        let now = mails(maildir);
        if now.iter().any(|mail| mail.contains(needle)) || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
