//! Layered configuration: defaults, then a TOML file (`--config` or
//! `CHISO_CONFIG`), then `CHISO_*` environment variables (nested keys with
//! `__`, e.g. `CHISO_LOG__FORMAT=json`), then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chiso_auth::Algorithm;
use chiso_telemetry::LogFormat;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Address the gRPC server listens on.
    pub listen: SocketAddr,
    /// Where `chiso up` keeps its SQLite files and development signing key.
    pub data_dir: PathBuf,
    /// Database of a single service (`chiso units serve`, `chiso migrate`):
    /// `sqlite://…` or `postgres://…`.
    pub database_url: Option<String>,
    pub log: LogConfig,
    pub auth: AuthConfig,
    /// How the assessment and reporting services reach the units service.
    pub units: UnitsLink,
    /// How the reporting service reaches the assessment service (its event
    /// stream). It presents the same service token, from `units.token_file`:
    /// one token with the service role and national scope serves both.
    pub assessment: AssessmentLink,
    /// Seconds in-flight calls get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogConfig {
    /// `auto` (text on a terminal, JSON otherwise), `json` or `pretty`.
    #[serde(with = "log_format")]
    pub format: LogFormat,
    /// `RUST_LOG`-style filter; `RUST_LOG` wins when set.
    pub filter: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AuthConfig {
    /// File holding a hex HS256 secret shared with the token issuer.
    pub hs256_secret_file: Option<PathBuf>,
    /// PEM public key of the token issuer (production).
    pub public_key_file: Option<PathBuf>,
    /// Algorithm of `public_key_file`: RS256 (when unset), ES256 or EdDSA.
    #[serde(default, with = "algorithm")]
    pub algorithm: Option<Algorithm>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UnitsLink {
    /// e.g. `http://chiso-units:50051`.
    pub url: Option<String>,
    /// File holding the service token presented to it.
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AssessmentLink {
    /// e.g. `http://chiso-assessment:50051`.
    pub url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:50051".parse().expect("valid default address"),
            data_dir: PathBuf::from("chiso-data"),
            database_url: None,
            log: LogConfig {
                format: LogFormat::Auto,
                filter: "info".to_owned(),
            },
            auth: AuthConfig::default(),
            units: UnitsLink::default(),
            assessment: AssessmentLink::default(),
            shutdown_grace_secs: 20,
        }
    }
}

/// Flags that override the configuration when given.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            anyhow::ensure!(
                file.exists(),
                "config file {} does not exist",
                file.display()
            );
            figment = figment.merge(Toml::file(file));
        }
        figment = figment
            .merge(Env::prefixed("CHISO_").split("__").only(&[
                "listen",
                "data_dir",
                "database_url",
                "log.format",
                "log.filter",
                "auth.hs256_secret_file",
                "auth.public_key_file",
                "auth.algorithm",
                "units.url",
                "units.token_file",
                "assessment.url",
                "shutdown_grace_secs",
            ]))
            .merge(Serialized::defaults(overrides));
        figment.extract().context("invalid configuration")
    }

    /// The effective configuration as TOML, passwords hidden.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        let mut shown = self.clone();
        shown.database_url = shown.database_url.as_deref().map(redact);
        Ok(toml::to_string_pretty(&shown)?)
    }
}

/// `log.format` by the names the setting takes.
mod log_format {
    use chiso_telemetry::LogFormat;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(format: &LogFormat, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match format {
            LogFormat::Auto => "auto",
            LogFormat::Json => "json",
            LogFormat::Pretty => "pretty",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LogFormat, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// `auth.algorithm` by its JWT name (`RS256`).
mod algorithm {
    use chiso_auth::Algorithm;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(
        algorithm: &Option<Algorithm>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        algorithm.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Algorithm>, D::Error> {
        let Some(name) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        name.parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("{name:?} is not a JWT algorithm")))
    }
}

/// Hides a password in a database URL.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..s + 3], &creds[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's own error type
    fn layers_apply_in_order() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "chiso.toml",
                "listen = \"127.0.0.1:7000\"\n[log]\nformat = \"json\"\n",
            )?;
            jail.set_env("CHISO_LOG__FORMAT", "pretty");
            jail.set_env("CHISO_DATA_DIR", "/srv/chiso");
            let overrides = Overrides {
                data_dir: Some(PathBuf::from("/flag")),
                ..Overrides::default()
            };
            let c = Config::load(Some(Path::new("chiso.toml")), &overrides).unwrap();
            assert_eq!(c.listen.port(), 7000, "file over defaults");
            assert_eq!(c.log.format, LogFormat::Pretty, "environment over file");
            assert_eq!(c.data_dir, PathBuf::from("/flag"), "flags over environment");
            assert_eq!(c.log.filter, "info", "defaults remain");
            Ok(())
        });
    }

    #[test]
    fn dumped_config_hides_passwords() {
        assert_eq!(
            redact("postgres://u:secret@db/chiso"),
            "postgres://u:***@db/chiso"
        );
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
