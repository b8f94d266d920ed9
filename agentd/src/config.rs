//! Daemon configuration: built-in defaults, then `/etc/agentd/agentd.toml` (or `--config`),
//! then command-line flags.

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const DEFAULT_CONFIG: &str = "/etc/agentd/agentd.toml";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/agentd";
/// Admin presets, searched before `--policy-dir`.
pub const SYSTEM_POLICY_DIR: &str = "/etc/agentd/policies";
pub const DEFAULT_CGROUP_PARENT: &str = "agentd";
/// Members of this group may act on every run (ps, kill, pause, approve …), not only their own.
pub const DEFAULT_ADMIN_GROUP: &str = "agentd-admin";
/// A run's `audit.jsonl` is rotated before it would grow past this many bytes (64 MiB).
pub const DEFAULT_AUDIT_ROTATE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub socket: PathBuf,
    pub state_dir: PathBuf,
    /// Searched in order for `NAME.toml`.
    pub policy_dirs: Vec<PathBuf>,
    pub cgroup_root: PathBuf,
    /// Name of the cgroup directory that holds this daemon's runs (hybrid and root-cgroup hosts).
    pub cgroup_parent: String,
    pub log_level: Option<String>,
    /// Group whose members have authority over every run (default `agentd-admin`).
    pub admin_group: String,
    /// Rotate a run's audit log before it exceeds this size; 0 = never rotate.
    pub audit_rotate_bytes: u64,
}

/// The config file's keys (all optional; packaging/agentd.toml documents each).
#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub socket: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub policy_dir: Option<PathBuf>,
    pub cgroup_parent: Option<String>,
    pub log_level: Option<String>,
    pub admin_group: Option<String>,
    pub audit_rotate_bytes: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {0}: {1}")]
    Read(String, #[source] std::io::Error),
    #[error("invalid config {0}: {1}")]
    Parse(String, String),
}

impl FileConfig {
    /// Reads `path`; a missing default config file is not an error, a missing explicit one is.
    pub fn load(path: &Path, explicit: bool) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => toml::from_str(&text)
                .map_err(|e| ConfigError::Parse(path.display().to_string(), e.to_string())),
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(ConfigError::Read(path.display().to_string(), e)),
        }
    }
}

/// Flags given on the command line (each overrides the file).
#[derive(Debug, Default)]
pub struct Flags {
    pub socket: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub policy_dir: Vec<PathBuf>,
    pub cgroup_parent: Option<String>,
    pub log_level: Option<String>,
}

impl Config {
    pub fn merge(file: FileConfig, flags: Flags) -> Config {
        let mut policy_dirs = vec![PathBuf::from(SYSTEM_POLICY_DIR)];
        if flags.policy_dir.is_empty() {
            policy_dirs.extend(file.policy_dir);
        } else {
            policy_dirs.extend(flags.policy_dir);
        }
        Config {
            socket: flags
                .socket
                .or(file.socket)
                .unwrap_or_else(|| agentd_proto::DEFAULT_SOCKET.into()),
            state_dir: flags
                .state_dir
                .or(file.state_dir)
                .unwrap_or_else(|| DEFAULT_STATE_DIR.into()),
            policy_dirs,
            cgroup_root: "/sys/fs/cgroup".into(),
            cgroup_parent: flags
                .cgroup_parent
                .or(file.cgroup_parent)
                .unwrap_or_else(|| DEFAULT_CGROUP_PARENT.into()),
            log_level: flags.log_level.or(file.log_level),
            admin_group: file
                .admin_group
                .unwrap_or_else(|| DEFAULT_ADMIN_GROUP.into()),
            audit_rotate_bytes: file
                .audit_rotate_bytes
                .unwrap_or(DEFAULT_AUDIT_ROTATE_BYTES),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_system_dir_comes_first() {
        let file: FileConfig =
            toml::from_str("socket = \"/a.sock\"\npolicy_dir = \"/p\"\nstate_dir = \"/s\"")
                .unwrap();
        let c = Config::merge(
            file,
            Flags {
                socket: Some("/b.sock".into()),
                ..Flags::default()
            },
        );
        assert_eq!(c.socket, PathBuf::from("/b.sock"));
        assert_eq!(c.state_dir, PathBuf::from("/s"));
        assert_eq!(
            c.policy_dirs,
            vec![PathBuf::from(SYSTEM_POLICY_DIR), "/p".into()]
        );
    }

    #[test]
    fn defaults_apply_without_file_or_flags() {
        let c = Config::merge(FileConfig::default(), Flags::default());
        assert_eq!(c.socket, PathBuf::from(agentd_proto::DEFAULT_SOCKET));
        assert_eq!(c.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
    }

    #[test]
    fn admin_group_and_rotation_have_defaults_and_file_values() {
        let c = Config::merge(FileConfig::default(), Flags::default());
        assert_eq!(c.admin_group, DEFAULT_ADMIN_GROUP);
        assert_eq!(c.audit_rotate_bytes, DEFAULT_AUDIT_ROTATE_BYTES);
        let file: FileConfig =
            toml::from_str("admin_group = \"wheel\"\naudit_rotate_bytes = 0").unwrap();
        let c = Config::merge(file, Flags::default());
        assert_eq!(c.admin_group, "wheel");
        assert_eq!(c.audit_rotate_bytes, 0);
    }

    #[test]
    fn shipped_config_file_parses() {
        let text = include_str!("../../packaging/agentd.toml");
        let file: FileConfig = toml::from_str(text).unwrap();
        assert_eq!(
            file,
            FileConfig::default(),
            "the shipped file only documents defaults"
        );
    }

    #[test]
    fn unknown_config_key_is_an_error() {
        assert!(toml::from_str::<FileConfig>("sockett = \"/x\"").is_err());
    }
}
