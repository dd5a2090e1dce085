//! The StackPro data marketplace: buyers find, license and download curated datasets
//! through expiring signed URLs, under data contracts, access grants and usage plans;
//! usage is metered and revenue shared with the tenants whose records were sold.
//!
//! - [`service::Marketplace`] holds every operation, called by the HTTP handlers and by
//!   the `stackpro` operator commands alike.
//! - [`http::router`] is the axum API (OpenAPI at `/openapi.json`), [`serve`] runs it.
//! - The control-plane tables are `catalog`'s [`MarketStore`](catalog::market::MarketStore);
//!   this crate reaches storage and backends through `catalog` only.
//!
//! # Guarantees
//!
//! - **No URL without a right.** A signed URL is issued only under a contract in force
//!   and a live grant, only for releases of tenants whose consent stands at that request,
//!   and only within the plan's quota (counted atomically in the control plane). A
//!   revoked key or grant, an ended contract or withdrawn consent stops new URLs on the
//!   next request; URLs already issued work until their expiry.
//! - **A URL opens one file until one instant.** Local URLs are HMAC-signed over key id,
//!   expiry and path, with keys of their own; the file server serves nothing outside the
//!   curated root, follows no symbolic link, and answers `HEAD` and `Range`.
//! - **Errors are JSON** `{"errorCode", "message"}` with stable codes; internal details
//!   are logged, never returned.

pub mod error;
mod files;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod revenue;
pub mod secrets;
pub mod service;
pub mod settings;
pub mod signing;

use std::future::Future;
use std::time::Duration;

pub use error::{ApiError, ApiResult, ErrorBody};
pub use http::{AppState, router};
pub use service::Marketplace;
pub use settings::Settings;

/// Serves the API on `listener` until `shutdown` resolves, adding dataset versions for
/// newly published releases every `sync_every` (the worker adds them too; this catches
/// releases published by a worker that stopped before doing so).
///
/// # Errors
/// The listener fails.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    sync_every: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let market = state.market.clone();
    let sync = tokio::spawn(async move {
        let mut tick = tokio::time::interval(sync_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = market.sync_all_versions().await {
                tracing::warn!(error = %e, "dataset version sync failed; retrying at the next tick");
            }
            if let Err(e) = market.reconcile_lake_grants().await {
                tracing::warn!(error = %e, "data-lake grant reconciliation failed; retrying at the next tick");
            }
        }
    });
    let result = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    sync.abort();
    result
}
