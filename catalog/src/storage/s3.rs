//! `s3://` locations (feature `aws`): `object_store`'s S3 client with credentials from the
//! AWS SDK's standard chain.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_credential_types::provider::ProvideCredentials;
use object_store::CredentialProvider;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AwsCredential};
use tokio::sync::{Mutex, OnceCell};

use super::Location;
use crate::{AwsSettings, Error, Result};

/// `bucket` and key prefix (no leading or trailing `/`) of an `s3://` URL.
pub fn split_s3_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| Error::Config(format!("`{url}` is not an s3:// URL")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::Config(format!("`{url}`: no bucket name")));
    }
    Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
}

/// An `s3://bucket[/prefix]` location. Region and endpoint come from the settings (or
/// the environment); path-style requests, so emulators and dotted bucket names work.
pub fn location(url: &str, settings: &AwsSettings) -> Result<Location> {
    let (bucket, prefix) = split_s3_url(url)?;
    let (_, store) = bucket_store(url, settings)?;
    let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
        store
    } else {
        Arc::new(object_store::prefix::PrefixStore::new(
            store,
            object_store::path::Path::from(prefix.as_str()),
        ))
    };
    let url = if prefix.is_empty() {
        format!("s3://{bucket}")
    } else {
        format!("s3://{bucket}/{prefix}")
    };
    Ok(Location {
        store,
        url,
        local_dir: None,
    })
}

/// The whole bucket of an `s3://` URL as an object store, with its root URL
/// (`s3://bucket`), for readers that resolve full URLs (DataFusion).
pub fn bucket_store(url: &str, settings: &AwsSettings) -> Result<(String, Arc<dyn ObjectStore>)> {
    let (bucket, _) = split_s3_url(url)?;
    Ok((
        format!("s3://{bucket}"),
        Arc::new(s3_client(&bucket, settings)?),
    ))
}

/// Presigns GETs of the objects in one bucket (S3 presigned URLs, SigV4 query
/// authentication) with the same credentials and endpoint as the bucket's store.
#[derive(Debug)]
pub struct Presigner {
    bucket: String,
    client: object_store::aws::AmazonS3,
}

impl Presigner {
    /// A presigner for the bucket of the `s3://` URL `root`.
    pub fn new(root: &str, settings: &AwsSettings) -> Result<Self> {
        let (bucket, _) = split_s3_url(root)?;
        Ok(Self {
            client: s3_client(&bucket, settings)?,
            bucket,
        })
    }

    /// A URL that GETs the object `url` (`s3://bucket/key`) for `expires_in`.
    pub async fn presign_get(&self, url: &str, expires_in: Duration) -> Result<String> {
        use object_store::signer::Signer;
        let (bucket, key) = split_s3_url(url)?;
        if bucket != self.bucket {
            return Err(Error::Invalid(format!(
                "{url} is not in bucket {}",
                self.bucket
            )));
        }
        let signed = self
            .client
            .signed_url(
                http::Method::GET,
                &object_store::path::Path::from(key.as_str()),
                expires_in,
            )
            .await?;
        Ok(signed.to_string())
    }
}

fn s3_client(bucket: &str, settings: &AwsSettings) -> Result<object_store::aws::AmazonS3> {
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(false)
        .with_credentials(Arc::new(SdkCredentials::default()));
    if let Some(region) = settings
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
    {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = settings.effective_endpoint() {
        builder = builder
            .with_allow_http(endpoint.starts_with("http://"))
            .with_endpoint(endpoint);
    }
    Ok(builder.build()?)
}

/// Bridges the AWS SDK's default credential chain (environment, profile, SSO, web
/// identity, ECS and instance roles) into `object_store`, which on its own reads only a
/// subset of it. Credentials are cached until five minutes before they expire.
#[derive(Debug, Default)]
struct SdkCredentials {
    chain: OnceCell<aws_config::default_provider::credentials::DefaultCredentialsChain>,
    cached: Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

#[async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((cred, expiry)) = cached.as_ref() {
            let fresh = expiry.is_none_or(|t| t > SystemTime::now() + Duration::from_secs(300));
            if fresh {
                return Ok(Arc::clone(cred));
            }
        }
        let chain = self
            .chain
            .get_or_init(|| async {
                aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                    .build()
                    .await
            })
            .await;
        let creds =
            chain
                .provide_credentials()
                .await
                .map_err(|e| object_store::Error::Generic {
                    store: "S3",
                    source: Box::new(e),
                })?;
        let cred = Arc::new(AwsCredential {
            key_id: creds.access_key_id().to_owned(),
            secret_key: creds.secret_access_key().to_owned(),
            token: creds.session_token().map(str::to_owned),
        });
        *cached = Some((Arc::clone(&cred), creds.expiry()));
        Ok(cred)
    }
}
