//! The marketplace's settings: the `[marketplace]` section of the platform's TOML file
//! (read by the `stackpro` CLI with the rest of its configuration), and its secrets,
//! which never live in that file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::secrets::{KeyHasher, UrlKeys};

/// Environment variables the marketplace reads.
pub mod env {
    /// The feature flag: `false` makes `serve` refuse to start.
    pub const ENABLED: &str = catalog::flags::MARKETPLACE_ENABLED;
    /// The API key pepper (at least 32 bytes).
    pub const KEY_PEPPER: &str = "STACKPRO_API_KEY_PEPPER";
    /// `kid:secret[,kid:secret…]`, the first signing new URLs.
    pub const URL_SIGNING_KEYS: &str = "STACKPRO_URL_SIGNING_KEYS";
    pub const LISTEN: &str = "STACKPRO_LISTEN";
    pub const PUBLIC_URL: &str = "STACKPRO_PUBLIC_URL";
}

/// `[marketplace]` of the configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// The feature flag (`MARKETPLACE_ENABLED`).
    pub enabled: bool,
    /// Where `serve` listens.
    pub listen: SocketAddr,
    /// The base of the download URLs the API hands out (default `http://{listen}`): what
    /// buyers reach the API at, behind a proxy or not.
    pub public_url: Option<String>,
    /// Lifetime of a signed URL when the request names none, in seconds.
    pub url_ttl_secs: u64,
    /// The longest lifetime a request may ask for, in seconds.
    pub max_url_ttl_secs: u64,
    /// File holding the API key pepper (`STACKPRO_API_KEY_PEPPER` wins).
    pub key_pepper_file: Option<PathBuf>,
    /// File holding the URL signing keys, `kid:secret` per line or comma-separated
    /// (`STACKPRO_URL_SIGNING_KEYS` wins).
    pub url_signing_keys_file: Option<PathBuf>,
    /// Largest page of `GET /datasets`.
    pub max_page_size: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            url_ttl_secs: 15 * 60,
            max_url_ttl_secs: 60 * 60,
            key_pepper_file: None,
            url_signing_keys_file: None,
            max_page_size: 100,
        }
    }
}

/// A setting that cannot be used; the CLI exits 2 with it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

impl Settings {
    /// Applies the environment overrides read through `get`.
    ///
    /// # Errors
    /// A value that does not parse.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), SettingsError> {
        if let Some(v) = get(env::ENABLED) {
            self.enabled = catalog::flags::parse_flag(env::ENABLED, &v).map_err(SettingsError)?;
        }
        if let Some(v) = get(env::LISTEN) {
            self.listen = v
                .parse()
                .map_err(|e| SettingsError(format!("{}={v:?}: {e}", env::LISTEN)))?;
        }
        if let Some(v) = get(env::PUBLIC_URL) {
            self.public_url = Some(v);
        }
        Ok(())
    }

    /// The base of download URLs, without a trailing `/`.
    #[must_use]
    pub fn public_base(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }

    /// Default and longest URL lifetimes.
    ///
    /// # Errors
    /// A zero lifetime, or a default over the maximum.
    pub fn url_ttls(&self) -> Result<(Duration, Duration), SettingsError> {
        if self.url_ttl_secs == 0 || self.url_ttl_secs > self.max_url_ttl_secs {
            return Err(SettingsError(format!(
                "marketplace.url_ttl_secs must be between 1 and max_url_ttl_secs ({})",
                self.max_url_ttl_secs
            )));
        }
        // Presigned S3 URLs live at most 7 days.
        if self.max_url_ttl_secs > 7 * 24 * 3600 {
            return Err(SettingsError(
                "marketplace.max_url_ttl_secs must be at most 604800 (7 days)".into(),
            ));
        }
        Ok((
            Duration::from_secs(self.url_ttl_secs),
            Duration::from_secs(self.max_url_ttl_secs),
        ))
    }

    /// The API key pepper: `$STACKPRO_API_KEY_PEPPER`, else the pepper file.
    ///
    /// # Errors
    /// None configured, unreadable, too short, or equal to `hash_key` (the pipeline's key).
    pub fn key_hasher(
        &self,
        get: impl Fn(&str) -> Option<String>,
        hash_key: Option<&[u8]>,
    ) -> Result<KeyHasher, SettingsError> {
        let pepper = secret(
            &get,
            env::KEY_PEPPER,
            self.key_pepper_file.as_ref(),
            "marketplace.key_pepper_file",
        )?;
        if hash_key.is_some_and(|k| k == pepper.as_bytes()) {
            return Err(SettingsError(
                "the API key pepper must not be the pipeline's hashing key".into(),
            ));
        }
        KeyHasher::new(pepper.as_bytes()).map_err(|e| SettingsError(e.to_string()))
    }

    /// The URL signing keys: `$STACKPRO_URL_SIGNING_KEYS`, else the keys file.
    ///
    /// # Errors
    /// None configured, malformed, or a key equal to the pipeline's hashing key or the
    /// pepper.
    pub fn url_keys(
        &self,
        get: impl Fn(&str) -> Option<String>,
        other_secrets: &[&[u8]],
    ) -> Result<UrlKeys, SettingsError> {
        let spec = secret(
            &get,
            env::URL_SIGNING_KEYS,
            self.url_signing_keys_file.as_ref(),
            "marketplace.url_signing_keys_file",
        )?;
        let keys =
            UrlKeys::parse(&spec.replace('\n', ",")).map_err(|e| SettingsError(e.to_string()))?;
        if keys.secrets().any(|s| other_secrets.contains(&s)) {
            return Err(SettingsError(
                "a URL signing key must be a secret of its own (not the hashing key or the pepper)"
                    .into(),
            ));
        }
        Ok(keys)
    }
}

impl Settings {
    /// Both secrets, each checked against the other and against the pipeline's hashing
    /// key (`hash_key`).
    ///
    /// # Errors
    /// As [`Settings::key_hasher`] and [`Settings::url_keys`].
    pub fn secrets(
        &self,
        get: impl Fn(&str) -> Option<String>,
        hash_key: Option<&[u8]>,
    ) -> Result<(KeyHasher, UrlKeys), SettingsError> {
        let hasher = self.key_hasher(&get, hash_key)?;
        let mut others: Vec<&[u8]> = vec![hasher.pepper()];
        others.extend(hash_key);
        let urls = self.url_keys(&get, &others)?;
        Ok((hasher, urls))
    }
}

fn secret(
    get: &impl Fn(&str) -> Option<String>,
    var: &str,
    file: Option<&PathBuf>,
    file_setting: &str,
) -> Result<String, SettingsError> {
    if let Some(v) = get(var).filter(|v| !v.is_empty()) {
        return Ok(v);
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SettingsError(format!("cannot read {}: {e}", path.display())))?;
        return Ok(text.trim_end_matches(['\r', '\n']).to_owned());
    }
    Err(SettingsError(format!(
        "no {var} configured: set it (at least {} bytes) or {file_setting}",
        crate::secrets::MIN_SECRET_BYTES
    )))
}
