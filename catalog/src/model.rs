//! The catalog's data types, shaped to map onto AWS without translation loss.
//!
//! - A [`TableSchema`] is one Glue table per dataset: data columns in file order
//!   plus Hive-style partition keys ([`PARTITION_KEYS`](crate::layout::PARTITION_KEYS)).
//! - A [`Release`] is one Glue partition of that table
//!   (`tenant={tenant}/dt={dt}/release={release_id}`, see
//!   [`Release::partition_values`]) and one DynamoDB-sized item of metadata.
//! - A [`RawObjectRef`] in [`Release::inputs`] is a row of the raw-object
//!   ledger: it records that the object was released, and by which release.
//! - A [`ConsentSetting`] is one item of the control-plane `ConsentSettings`
//!   table, keyed by (tenant, dataset).

use std::collections::BTreeMap;

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// The type of a data column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// UTF-8 text.
    String,
    /// 64-bit signed integer.
    Int64,
    /// 64-bit IEEE float.
    Float64,
    /// `true` / `false`.
    Boolean,
    /// A calendar date without time zone.
    Date,
}

impl ColumnType {
    /// The Glue / Hive type name of this column type.
    #[must_use]
    pub fn glue_type(&self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Int64 => "bigint",
            Self::Float64 => "double",
            Self::Boolean => "boolean",
            Self::Date => "date",
        }
    }
}

/// One data column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name as written in the Parquet files.
    pub name: String,
    /// Column type.
    pub data_type: ColumnType,
    /// Optional human description (Glue column comment).
    pub comment: Option<String>,
}

/// The schema of one curated dataset: a Glue table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSchema {
    /// Dataset name, which is also the table name (e.g. `contacts`).
    pub dataset: String,
    /// Data columns, in file order. Must not repeat a name or a partition key.
    pub columns: Vec<Column>,
    /// Hive-style partition keys, outermost first; normally [`PARTITION_KEYS`](crate::layout::PARTITION_KEYS).
    pub partition_keys: Vec<String>,
    /// URL of the table's root folder, `{curated}/dataset={dataset}/`.
    pub location: String,
    /// The policy the dataset is currently released under.
    pub policy_id: String,
    /// Content hash of that policy version.
    pub policy_hash: String,
    /// The policy's k (minimum distinct subjects per equivalence class).
    pub k: u32,
    /// Free-form table parameters (Glue table parameters).
    pub parameters: BTreeMap<String, String>,
}

/// One curated file of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseFile {
    /// Full URL of the Parquet file.
    pub path: String,
    /// File size in bytes.
    pub size_bytes: u64,
    /// Number of rows in the file.
    pub rows: u64,
}

/// A raw object consumed by a release (a row of the raw-object ledger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawObjectRef {
    /// The ledger key: the raw object's URL, with `#etag={etag}` when the store reported
    /// one, so an object rewritten under the same name is a new input.
    pub key: String,
    /// Object size in bytes when it was read.
    pub size: u64,
    /// Object ETag when it was read, if the store reports one.
    pub e_tag: Option<String>,
}

/// A published release: immutable curated files plus the metadata that proves
/// how they were produced. Maps onto one Glue partition of the dataset's table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Unique, stable identifier; the `release=` partition value.
    pub release_id: String,
    /// The dataset (table) the release belongs to.
    pub dataset: String,
    /// The tenant whose records were released.
    pub tenant: String,
    /// Partition day, `YYYY-MM-DD`.
    pub dt: String,
    /// URL prefix of the release folder.
    pub location: String,
    /// The curated files, in order.
    pub files: Vec<ReleaseFile>,
    /// The raw objects this release consumed; each may be released only once.
    pub inputs: Vec<RawObjectRef>,
    /// Policy the release was produced under.
    pub policy_id: String,
    /// Content hash of that policy version.
    pub policy_hash: String,
    /// Identifier of the hashing key (never the key itself).
    pub key_id: String,
    /// The k the release satisfies.
    pub k: u32,
    /// Records read.
    pub records_in: u64,
    /// Records written.
    pub records_out: u64,
    /// Records suppressed to reach k.
    pub suppressed: u64,
    /// Records quarantined as unparseable or invalid.
    pub quarantined: u64,
    /// Equivalence classes under k at the chosen node (all suppressed).
    pub k_anon_violations: u64,
    /// The chosen generalization node, e.g. `zip=1,age=2,gender=0`.
    pub node: String,
    /// The full release report.
    pub report: serde_json::Value,
    /// When the release was published.
    pub published_at: DateTime<Utc>,
}

impl Release {
    /// The Hive partition of this release, in [`PARTITION_KEYS`](crate::layout::PARTITION_KEYS) order:
    /// `[("tenant", ..), ("dt", ..), ("release", ..)]`.
    #[must_use]
    pub fn partition_values(&self) -> Vec<(String, String)> {
        let [tenant, dt, release] = crate::layout::PARTITION_KEYS;
        vec![
            (tenant.to_owned(), self.tenant.clone()),
            (dt.to_owned(), self.dt.clone()),
            (release.to_owned(), self.release_id.clone()),
        ]
    }
}

impl TableSchema {
    /// Rejects schemas Glue would reject (empty or repeated names, a column named like a
    /// partition key), before any backend is touched.
    pub fn validate(&self) -> Result<()> {
        let schema = self;
        path_segment("dataset", &schema.dataset)?;
        let mut seen = HashSet::new();
        let names = schema
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .chain(schema.partition_keys.iter().map(String::as_str));
        for name in names {
            if name.is_empty() {
                return Err(Error::Invalid(format!(
                    "table {}: empty column or partition key name",
                    schema.dataset
                )));
            }
            if !seen.insert(name) {
                return Err(Error::Invalid(format!(
                    "table {}: column or partition key {name:?} appears twice",
                    schema.dataset
                )));
            }
        }
        Ok(())
    }
}

impl Release {
    /// Rejects malformed releases (see [`DataCatalog::publish_release`](crate::DataCatalog::publish_release)),
    /// before any backend is touched.
    pub fn validate(&self) -> Result<()> {
        let release = self;
        path_segment("release_id", &release.release_id)?;
        path_segment("dataset", &release.dataset)?;
        path_segment("tenant", &release.tenant)?;
        if crate::layout::parse_partition_day(&release.dt).is_none() {
            return Err(Error::Invalid(format!(
                "release {}: dt {:?} is not YYYY-MM-DD",
                release.release_id, release.dt
            )));
        }
        let mut seen = HashSet::new();
        if let Some(dup) = release.inputs.iter().find(|input| !seen.insert(&input.key)) {
            return Err(Error::Invalid(format!(
                "release {}: input {} is listed twice",
                release.release_id, dup.key
            )));
        }
        Ok(())
    }
}

/// A partition value becomes a path segment (`tenant=…/`): non-empty, no `/`.
fn path_segment(what: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.contains('/') {
        return Err(Error::Invalid(format!(
            "{what} {value:?} must be a non-empty path segment without '/'"
        )));
    }
    Ok(())
}

/// Which releases to list; `None` fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseFilter {
    /// Only releases of this dataset.
    pub dataset: Option<String>,
    /// Only releases of this tenant.
    pub tenant: Option<String>,
}

/// What [`DataCatalog::publish_release`](crate::DataCatalog::publish_release) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublishOutcome {
    /// The release is now visible.
    Published,
    /// A release with this id was already published; nothing changed.
    AlreadyPublished,
}

/// A tenant's consent to have one dataset released (default: denied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentSetting {
    /// The tenant.
    pub tenant: String,
    /// The dataset.
    pub dataset: String,
    /// Whether releasing is allowed.
    pub granted: bool,
    /// When the setting last changed.
    pub updated_at: DateTime<Utc>,
    /// Who changed it (user or service id).
    pub updated_by: String,
    /// Whether the tenant takes part in the marketplace's revenue share (default: no; its
    /// share then stays with the platform).
    #[serde(default)]
    pub revenue_share: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_types_serialize_lowercase_and_map_to_glue() {
        let cases = [
            (ColumnType::String, "\"string\"", "string"),
            (ColumnType::Int64, "\"int64\"", "bigint"),
            (ColumnType::Float64, "\"float64\"", "double"),
            (ColumnType::Boolean, "\"boolean\"", "boolean"),
            (ColumnType::Date, "\"date\"", "date"),
        ];
        for (ty, json, glue) in cases {
            assert_eq!(serde_json::to_string(&ty).expect("serialize"), json);
            assert_eq!(
                serde_json::from_str::<ColumnType>(json).expect("deserialize"),
                ty
            );
            assert_eq!(ty.glue_type(), glue);
        }
    }
}
