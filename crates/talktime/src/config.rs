//! Configuration: the shipped `config/talktime.toml` is embedded as the defaults, a user file
#![allow(dead_code)] // fields and helpers the call engine wiring uses next
//! is merged over it key by key, and command-line flags override both.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

/// The shipped configuration file, which doubles as the documentation of every key.
pub const EMBEDDED_DEFAULTS: &str = include_str!("../../../config/talktime.toml");

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Syntax {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub sip: SipConfig,
    pub rtp: RtpConfig,
    pub database: DatabaseConfig,
    pub paths: PathsConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipConfig {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub advertised_address: String,
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    pub udp_mtu: usize,
    pub test_number: String,
    pub test_call_ms: u64,
    pub user_agent: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtpConfig {
    pub port_min: u16,
    pub port_max: u16,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathsConfig {
    pub data_dir: PathBuf,
    pub prompts_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub filter: String,
}

impl Config {
    /// The embedded defaults alone.
    pub fn embedded() -> Result<Self, ConfigError> {
        Self::from_layers(None)
    }

    /// The embedded defaults with the file at `path` merged over them.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let overlay = parse_table(&text, path)?;
        Self::from_layers(Some(overlay))
    }

    fn from_layers(overlay: Option<toml::Table>) -> Result<Self, ConfigError> {
        let mut base = parse_table(EMBEDDED_DEFAULTS, Path::new("<embedded defaults>"))?;
        if let Some(overlay) = overlay {
            merge(&mut base, overlay);
        }
        let config: Config = toml::Value::Table(base)
            .try_into()
            .map_err(|error: toml::de::Error| ConfigError::Invalid(error.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the relations between values that types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.sip.udp.is_empty() && self.sip.tcp.is_empty() {
            return Err(ConfigError::Invalid(
                "sip: at least one udp or tcp listen address is needed".into(),
            ));
        }
        if self.rtp.port_min >= self.rtp.port_max || self.rtp.port_min < 1024 {
            return Err(ConfigError::Invalid(format!(
                "rtp: port range {}-{} must be ascending and above 1023",
                self.rtp.port_min, self.rtp.port_max
            )));
        }
        if self.sip.t1_ms == 0 || self.sip.t2_ms < self.sip.t1_ms {
            return Err(ConfigError::Invalid(
                "sip: t1_ms must be positive and t2_ms at least t1_ms".into(),
            ));
        }
        Ok(())
    }

    /// The database URL with a relative SQLite path resolved under the data directory.
    pub fn database_url(&self) -> String {
        let url = &self.database.url;
        match url.strip_prefix("sqlite://") {
            Some(path) if !path.starts_with('/') && !path.starts_with(':') => format!(
                "sqlite://{}",
                self.paths
                    .data_dir
                    .join(path.split('?').next().unwrap_or(path))
                    .display()
            ),
            _ => url.clone(),
        }
    }
}

fn parse_table(text: &str, path: &Path) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|source| ConfigError::Syntax {
            path: path.to_owned(),
            source: Box::new(source),
        })
}

/// Merges `overlay` into `base`: tables recursively, every other value replaced.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(overlay_table)) => {
                merge(base_table, overlay_table)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_are_valid() {
        let config = Config::embedded().unwrap();
        assert_eq!(config.sip.udp, vec!["0.0.0.0:5060".parse().unwrap()]);
        assert_eq!(config.sip.t1_ms, 500);
        assert_eq!(config.database_url(), "sqlite://data/talktime.db");
    }

    #[test]
    fn a_file_overrides_only_what_it_names() {
        let mut base = parse_table(EMBEDDED_DEFAULTS, Path::new("x")).unwrap();
        let overlay = parse_table("[sip]\nt1_ms = 100\n", Path::new("y")).unwrap();
        merge(&mut base, overlay);
        let config: Config = toml::Value::Table(base).try_into().unwrap();
        assert_eq!(config.sip.t1_ms, 100);
        assert_eq!(config.sip.t2_ms, 4000);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("talktime-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(&path, "[sip]\nt1ms = 100\n").unwrap();
        let error = Config::load(&path).unwrap_err().to_string();
        assert!(error.contains("t1ms"), "{error}");
    }

    #[test]
    fn an_inverted_port_range_is_refused() {
        let mut config = Config::embedded().unwrap();
        config.rtp.port_min = 30000;
        config.rtp.port_max = 20000;
        assert!(config.validate().is_err());
    }
}
