//! Certificates for the TLS tests, made with the openssl command line: a test CA, server
//! certificates it signed (localhost, 127.0.0.1) and a self-signed impostor.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A test CA, a server certificate it signed (localhost, 127.0.0.1), a second one for the
/// reload, and a self-signed impostor with the same names.
pub struct Certificates {
    pub dir: PathBuf,
}

impl Certificates {
    pub fn make(dir: &Path) -> Certificates {
        std::fs::create_dir_all(dir).unwrap();
        let run = |args: &[&str]| {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let names = "subjectAltName=DNS:localhost,IP:127.0.0.1";
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Talktime Test CA",
        ]);
        std::fs::write(
            dir.join("leaf.cnf"),
            format!("{names}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n"),
        )
        .unwrap();
        for name in ["server", "renewed", "carrier"] {
            run(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                "/CN=localhost",
            ]);
            run(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "2",
                "-extfile",
                "leaf.cnf",
            ]);
        }
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "rogue.key",
            "-out",
            "rogue.pem",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            names,
        ]);
        // baresip takes its certificate and key from one file.
        for name in ["carrier", "rogue"] {
            let both = format!(
                "{}{}",
                std::fs::read_to_string(dir.join(format!("{name}.pem"))).unwrap(),
                std::fs::read_to_string(dir.join(format!("{name}.key"))).unwrap()
            );
            std::fs::write(dir.join(format!("{name}-both.pem")), both).unwrap();
        }
        Certificates {
            dir: dir.to_path_buf(),
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The SHA-256 of a certificate's DER form, as the `openssl` command line sees it.
    pub fn fingerprint(&self, name: &str) -> String {
        let output = Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(self.dir.join(name))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        text.trim()
            .rsplit('=')
            .next()
            .unwrap()
            .replace(':', "")
            .to_lowercase()
    }

    /// The base64 SHA-256 of a certificate's public key (what Chromium's SPKI list takes).
    pub fn spki(&self, name: &str) -> String {
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl x509 -pubkey -noout -in '{}' | openssl pkey -pubin -outform der \
                 | openssl dgst -sha256 -binary | base64",
                self.dir.join(name).display()
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}
