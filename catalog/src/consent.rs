//! The control plane's consent settings: may a tenant's data for a dataset be
//! released?
//!
//! # Guarantees
//!
//! - **Default deny.** A (tenant, dataset) pair without a stored setting is not
//!   granted; [`ConsentStoreExt::is_granted`] returns `false` for it.
//! - **One setting per pair.** [`ConsentStore::set_consent`] upserts by
//!   (tenant, dataset); the last write wins.

use async_trait::async_trait;

use crate::error::Result;
use crate::model::ConsentSetting;

/// Storage for [`ConsentSetting`]s: embedded SQLite ([`crate::SqliteConsentStore`]), or
/// the DynamoDB `ConsentSettings` table with the `aws` feature (`aws::DynamoConsentStore`).
#[async_trait]
pub trait ConsentStore: Send + Sync + std::fmt::Debug {
    /// Creates or replaces the setting for (`setting.tenant`, `setting.dataset`).
    async fn set_consent(&self, setting: &ConsentSetting) -> Result<()>;

    /// The stored setting for (`tenant`, `dataset`), if any.
    async fn consent(&self, tenant: &str, dataset: &str) -> Result<Option<ConsentSetting>>;

    /// All stored settings, sorted by (tenant, dataset).
    async fn consents(&self) -> Result<Vec<ConsentSetting>>;

    /// The stored settings of one dataset, sorted by tenant (the marketplace reads them on
    /// every download request).
    async fn dataset_consents(&self, dataset: &str) -> Result<Vec<ConsentSetting>> {
        let mut all = self.consents().await?;
        all.retain(|c| c.dataset == dataset);
        Ok(all)
    }
}

/// Convenience methods for every [`ConsentStore`], including `dyn ConsentStore`.
#[async_trait]
pub trait ConsentStoreExt: ConsentStore {
    /// Whether `tenant` granted consent for `dataset`. Default deny: `false`
    /// when no setting is stored.
    async fn is_granted(&self, tenant: &str, dataset: &str) -> Result<bool> {
        Ok(self
            .consent(tenant, dataset)
            .await?
            .is_some_and(|setting| setting.granted))
    }
}

#[async_trait]
impl<T: ConsentStore + ?Sized> ConsentStoreExt for T {}
