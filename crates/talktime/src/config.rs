//! The configuration's types and rules live in the sans-IO switch
//! ([`talktime_b2bua::config`]); the shell reads the file and names this node.

use std::path::Path;

pub use talktime_b2bua::config::*;

/// The embedded defaults with the file at `path` merged over them.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    Config::from_file_text(&text, path)
}

/// The configured node id, or `<host name>-<8 hex digits of the data directory>` so two
/// switches on one host with their own data directories differ and a restart keeps its own.
pub fn node_id(cluster: &ClusterConfig, data_dir: &Path) -> String {
    if !cluster.node_id.trim().is_empty() {
        return cluster.node_id.trim().to_owned();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "talktime".to_owned());
    let directory = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_owned());
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let hash = directory
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{host}-{:08x}", hash & 0xffff_ffff)
}
