//! `stackpro demo`: sample raw data for a few tenants and all three datasets, consent,
//! a full run, and verification — the fastest way to see the platform work.

use std::io::Write;
use std::path::{Path, PathBuf};

use catalog::layout::{self, Compression, Format, PartitionKey};
use catalog::storage::Scheme;
use catalog::{ConsentSetting, ConsentStore};

use crate::config::{Config, env};
use crate::synth::{GenOptions, RawFormat, generate};
use crate::{Error, Result};

/// One tenant of the demo and what it consents to.
pub struct DemoTenant {
    pub tenant: &'static str,
    pub consents: &'static [&'static str],
}

/// The demo's tenants: the last one never consented to `contacts`, to show the skip.
pub const TENANTS: &[DemoTenant] = &[
    DemoTenant {
        tenant: "t-0042",
        consents: &["contacts", "web_events", "orders"],
    },
    DemoTenant {
        tenant: "t-0077",
        consents: &["contacts", "web_events", "orders"],
    },
    DemoTenant {
        tenant: "t-0100",
        consents: &["web_events", "orders"],
    },
];

/// Per-dataset volume and encoding of the demo (all three encodings are exercised).
pub const DATASETS: &[(&str, u64, &str)] = &[
    ("contacts", 4000, "part-0000.ndjson"),
    ("web_events", 6000, "part-0000.ndjson.gz"),
    ("orders", 3000, "part-0000.csv"),
];

/// A writer that reports the bytes written through it.
struct Counted<'a, W: Write>(&'a mut W, &'a dyn Fn(u64));

impl<W: Write> Write for Counted<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.0.write(buf)?;
        (self.1)(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Writes one generated raw object, compressing by extension.
pub fn write_raw_object(path: &Path, opts: &GenOptions) -> Result<crate::synth::GenStats> {
    write_raw_object_with(path, opts, &|_| {})
}

/// [`write_raw_object`], telling `on_bytes` how many bytes of records were generated (before
/// compression) as they are.
pub fn write_raw_object_with(
    path: &Path,
    opts: &GenOptions,
    on_bytes: &dyn Fn(u64),
) -> Result<crate::synth::GenStats> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    // The name's extensions say how it is written, as `sources` will read it back; a
    // name without a raw format is written as plain NDJSON.
    let (format, compression) =
        layout::encoding_of(name).unwrap_or((Format::Ndjson, Compression::None));
    let format = match format {
        Format::Csv => RawFormat::Csv,
        Format::Ndjson => RawFormat::Ndjson,
    };
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let stats = match compression {
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
            let s = generate(opts, format, &mut Counted(&mut enc, on_bytes))?;
            enc.finish()?.flush()?;
            s
        }
        Compression::Zstd => {
            let mut enc = zstd::stream::write::Encoder::new(file, 3)?;
            let s = generate(opts, format, &mut Counted(&mut enc, on_bytes))?;
            enc.finish()?.flush()?;
            s
        }
        Compression::None => {
            let mut file = file;
            let s = generate(opts, format, &mut Counted(&mut file, on_bytes))?;
            file.flush()?;
            s
        }
    };
    Ok(stats)
}

/// The demo key file: created once with 32 random bytes (hex), mode 0600.
pub fn ensure_demo_key(state: &Path) -> Result<PathBuf> {
    let path = state.join("hash.key");
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all(state)?;
    let key: [u8; 32] = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&path)?;
    f.write_all(hex::encode(key).as_bytes())?;
    Ok(path)
}

/// Generates the demo's raw data under `config.raw` (a local folder) for `date`.
pub fn generate_raw(config: &Config, date: chrono::NaiveDate, seed: u64) -> Result<u64> {
    let raw = match Scheme::of(config.raw.trim())? {
        Scheme::Local(dir) => PathBuf::from(dir),
        Scheme::S3 => {
            return Err(Error::Config(
                "the demo writes its raw data to a local folder".into(),
            ));
        }
    };
    let mut records = 0;
    for (t, tenant) in TENANTS.iter().enumerate() {
        for (d, (dataset, n, file)) in DATASETS.iter().enumerate() {
            let source = match *dataset {
                "contacts" => "web-form",
                "web_events" => "site",
                _ => "shop",
            };
            let partition = PartitionKey {
                dataset: dataset.to_string(),
                tenant: tenant.tenant.to_string(),
                dt: date.to_string(),
            };
            let path = raw.join(layout::raw_path(&partition, source, file)?.as_ref());
            let opts = GenOptions {
                dataset: dataset.to_string(),
                records: *n,
                seed: seed + (t * 10 + d) as u64,
                dirty: 0.02,
                tenant: tenant.tenant.to_string(),
                date,
                people: None,
                profile: Default::default(),
            };
            records += write_raw_object(&path, &opts)?.records;
        }
    }
    Ok(records)
}

/// Grants the demo tenants' consents.
pub async fn grant_consents(consent: &dyn ConsentStore) -> Result<()> {
    for tenant in TENANTS {
        for dataset in tenant.consents {
            consent
                .set_consent(&ConsentSetting {
                    tenant: tenant.tenant.to_string(),
                    dataset: dataset.to_string(),
                    granted: true,
                    updated_at: chrono::Utc::now(),
                    updated_by: "stackpro demo".to_string(),
                    revenue_share: true,
                })
                .await?;
        }
    }
    Ok(())
}

/// Points the hash key at the demo key file unless one is configured.
pub fn configure_key(config: &mut Config) -> Result<Option<PathBuf>> {
    if std::env::var(env::HASH_KEY).is_ok_and(|k| !k.is_empty()) || config.hash_key_file.is_some() {
        return Ok(None);
    }
    let path = ensure_demo_key(&config.state)?;
    config.hash_key_file = Some(path.clone());
    Ok(Some(path))
}
