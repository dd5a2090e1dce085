//! The axum router: buyer endpoints, admin endpoints, signed file downloads, and
//! `/health`, `/metrics`, `/openapi.json`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use catalog::market::{Buyer, Listing, Role};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::files;
use crate::metrics::Metrics;
use crate::service::{DatasetPage, Marketplace, NewContract, Principal, SignedUrls, UsageReport};

/// What every handler reads.
#[derive(Debug, Clone)]
pub struct AppState {
    pub market: Marketplace,
    pub metrics: Arc<Metrics>,
    pub max_page_size: usize,
}

// ---- extractors ----

/// A JSON body whose rejection is an [`ApiError`] (`invalid_body`).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Self(v)),
            Err(e) => Err(json_rejection(&e)),
        }
    }
}

/// A body that may be empty (the defaults) or JSON.
fn optional_json<T: Default + DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request("invalid_body", format!("the JSON body does not parse: {e}"))
    })
}

fn json_rejection(e: &JsonRejection) -> ApiError {
    ApiError::bad_request("invalid_body", e.body_text())
}

/// Query parameters whose rejection is an [`ApiError`] (`invalid_query`).
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Self(v)),
            Err(e) => Err(query_rejection(&e)),
        }
    }
}

fn query_rejection(e: &QueryRejection) -> ApiError {
    ApiError::bad_request("invalid_query", e.body_text())
}

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> ApiResult<&str> {
    let value = headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::unauthorized("missing_api_key", "send `Authorization: Bearer <API key>`")
    })?;
    let text = value.to_str().ok();
    let token = text
        .and_then(|t| {
            t.strip_prefix("Bearer ")
                .or_else(|| t.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    token.ok_or_else(|| {
        ApiError::unauthorized(
            "malformed_authorization",
            "the Authorization header must be `Bearer <API key>`",
        )
    })
}

/// A request authenticated with a buyer's key.
pub struct BuyerAuth(pub Principal);

impl FromRequestParts<AppState> for BuyerAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let principal = state.market.authenticate(bearer(&parts.headers)?).await?;
        if principal.role != Role::Buyer {
            return Err(ApiError::forbidden(
                "buyer_key_required",
                "this endpoint takes a buyer's API key",
            ));
        }
        Ok(Self(principal))
    }
}

/// A request authenticated with an admin key.
pub struct AdminAuth(pub Principal);

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Self> {
        let principal = state.market.authenticate(bearer(&parts.headers)?).await?;
        if principal.role != Role::Admin {
            return Err(ApiError::forbidden(
                "admin_key_required",
                "this endpoint takes an admin key",
            ));
        }
        Ok(Self(principal))
    }
}

fn request_id() -> String {
    use rand::RngCore;
    let mut bytes = [0_u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("req-{}", hex::encode(bytes))
}

// ---- buyer endpoints ----

/// `GET /datasets` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size (default and maximum: the server's `max_page_size`).
    pub limit: Option<usize>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// getDatasets: the listed datasets, with schema, version, record counts, k and policy.
#[utoipa::path(get, path = "/datasets", operation_id = "getDatasets", params(PageParams),
    security(("apiKey" = [])),
    responses((status = 200, body = DatasetPage), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn get_datasets(
    State(state): State<AppState>,
    BuyerAuth(who): BuyerAuth,
    ApiQuery(params): ApiQuery<PageParams>,
) -> ApiResult<Json<DatasetPage>> {
    let limit = params
        .limit
        .unwrap_or(state.max_page_size)
        .clamp(1, state.max_page_size);
    Ok(Json(
        state
            .market
            .datasets(&who.owner, params.cursor.as_deref(), limit)
            .await?,
    ))
}

/// The body of getDataSignedUrl (all optional).
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedUrlRequest {
    /// Dataset version (default: the latest).
    pub version: Option<u64>,
    /// URL lifetime in seconds (default 900, at most the server's maximum).
    pub expires_in: Option<u64>,
}

/// getDataSignedUrl: expiring URLs for the curated files of a dataset version.
#[utoipa::path(post, path = "/datasets/{id}/signed-url", operation_id = "getDataSignedUrl",
    params(("id" = String, Path, description = "dataset id")),
    request_body(content = SignedUrlRequest, description = "optional"),
    security(("apiKey" = [])),
    responses((status = 200, body = SignedUrls), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "no_contract, contract_not_in_force, no_grant, grant_revoked, quota_exceeded"),
        (status = 404, body = ErrorBody), (status = 429, body = ErrorBody, description = "rate_limited, with Retry-After")))]
pub async fn post_signed_url(
    State(state): State<AppState>,
    BuyerAuth(who): BuyerAuth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body: SignedUrlRequest = optional_json(&body)?;
    let id_value = request_id();
    let urls = state
        .market
        .signed_urls(
            &who.owner,
            &id,
            body.version,
            body.expires_in.map(Duration::from_secs),
            &id_value,
        )
        .await?;
    let mut response = Json(urls).into_response();
    if let Ok(v) = HeaderValue::from_str(&id_value) {
        response.headers_mut().insert("x-request-id", v);
    }
    Ok(response)
}

/// `GET /usage` parameters: days, `YYYY-MM-DD`, `to` inclusive.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// First day (default: the first of this month).
    pub from: Option<NaiveDate>,
    /// Last day (default: today).
    pub to: Option<NaiveDate>,
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// getUsage: requests, files and bytes per day and dataset, and what is left of the quotas.
#[utoipa::path(get, path = "/usage", operation_id = "getUsage", params(UsageParams),
    security(("apiKey" = [])),
    responses((status = 200, body = UsageReport), (status = 401, body = ErrorBody)))]
pub async fn get_usage(
    State(state): State<AppState>,
    BuyerAuth(who): BuyerAuth,
    ApiQuery(params): ApiQuery<UsageParams>,
) -> ApiResult<Json<UsageReport>> {
    let today = Utc::now().date_naive();
    let to = params.to.unwrap_or(today);
    let from = params.from.unwrap_or_else(|| to.with_day(1).unwrap_or(to));
    let end = to.succ_opt().unwrap_or(to);
    Ok(Json(
        state
            .market
            .usage(&who.owner, midnight(from), midnight(end))
            .await?,
    ))
}

/// The query of a signed file URL.
#[derive(Debug, Deserialize)]
pub struct FileQuery {
    pub exp: i64,
    pub kid: String,
    pub sig: String,
}

/// A curated file behind a signed URL (`GET` and `HEAD`, `Range` answered with 206).
#[utoipa::path(get, path = "/files/{path}", operation_id = "getFile",
    params(("path" = String, Path, description = "curated file path"),
        ("exp" = i64, Query, description = "expiry, Unix seconds"),
        ("kid" = String, Query, description = "signing key id"),
        ("sig" = String, Query, description = "signature")),
    responses((status = 200, description = "the file"), (status = 206, description = "a range of it"),
        (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_file(
    State(state): State<AppState>,
    Path(path): Path<String>,
    query: Result<Query<FileQuery>, QueryRejection>,
    request: Request,
) -> ApiResult<Response> {
    let Some((curated, keys)) = state.market.signer.local() else {
        return Err(ApiError::not_found(
            "not_found",
            "files are served from object storage",
        ));
    };
    files::check_shape(&path)?;
    let Query(q) = query.map_err(|_| {
        ApiError::forbidden("signature_invalid", "the URL carries no valid signature")
    })?;
    files::check_signature(keys, &path, q.exp, &q.kid, &q.sig, Utc::now().timestamp())?;
    let root = curated
        .local_dir
        .as_deref()
        .ok_or_else(|| ApiError::not_found("not_found", "files are served from object storage"))?;
    let file = files::resolve(root, &path)?;
    let served = tower_http::services::ServeFile::new(file)
        .oneshot(request)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    Ok(served.map(axum::body::Body::new).into_response())
}

// ---- admin endpoints ----

/// A new buyer.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[serde(rename_all = "camelCase")]
pub struct NewBuyer {
    pub id: String,
    pub name: String,
    /// IAM ARN on AWS: the buyer's grants also become Lake Formation grants.
    #[serde(default)]
    pub aws_principal: Option<String>,
}

/// A key, shown once.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedKeyView {
    pub key_id: String,
    pub owner: String,
    /// The key to send as `Authorization: Bearer …`; it is not stored and not shown again.
    pub token: String,
}

/// A listing as an operator enters it.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListingBody {
    pub title: String,
    pub description: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A grant's optional expiry.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantBody {
    pub expires_at: Option<DateTime<Utc>>,
}

/// A tenant's consent for a dataset.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentBody {
    pub granted: bool,
    #[serde(default)]
    pub revenue_share: bool,
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    (status, Json(value)).into_response()
}

#[utoipa::path(post, path = "/admin/buyers", request_body = NewBuyer, security(("apiKey" = [])),
    responses((status = 201, description = "created"), (status = 409, body = ErrorBody)))]
pub async fn admin_create_buyer(
    State(state): State<AppState>,
    _admin: AdminAuth,
    ApiJson(body): ApiJson<NewBuyer>,
) -> ApiResult<Response> {
    let buyer: Buyer = state
        .market
        .create_buyer(&body.id, &body.name, body.aws_principal.as_deref())
        .await?;
    Ok(json(StatusCode::CREATED, &buyer))
}

#[utoipa::path(get, path = "/admin/buyers", security(("apiKey" = [])),
    responses((status = 200, description = "all buyers")))]
pub async fn admin_buyers(State(state): State<AppState>, _admin: AdminAuth) -> ApiResult<Response> {
    Ok(json(StatusCode::OK, &state.market.store.buyers().await?))
}

#[utoipa::path(post, path = "/admin/buyers/{id}/keys", params(("id" = String, Path)),
    security(("apiKey" = [])),
    responses((status = 201, body = IssuedKeyView), (status = 404, body = ErrorBody)))]
pub async fn admin_issue_key(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (issued, key) = state.market.issue_key(&id, Role::Buyer).await?;
    Ok(json(
        StatusCode::CREATED,
        &IssuedKeyView {
            key_id: key.key_id,
            owner: key.owner,
            token: issued.token,
        },
    ))
}

#[utoipa::path(delete, path = "/admin/keys/{key_id}", params(("key_id" = String, Path)),
    security(("apiKey" = [])),
    responses((status = 204, description = "revoked"), (status = 404, body = ErrorBody)))]
pub async fn admin_revoke_key(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Path(key_id): Path<String>,
) -> ApiResult<StatusCode> {
    state.market.revoke_key(&key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/admin/listings/{dataset}", params(("dataset" = String, Path)),
    request_body = ListingBody, security(("apiKey" = [])),
    responses((status = 200, description = "the listing"), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn admin_put_listing(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Path(dataset): Path<String>,
    ApiJson(body): ApiJson<ListingBody>,
) -> ApiResult<Response> {
    let listing = state
        .market
        .put_listing(Listing {
            dataset,
            title: body.title,
            description: body.description,
            expires_at: body.expires_at,
            updated_at: Utc::now(),
        })
        .await?;
    Ok(json(StatusCode::OK, &listing))
}

#[utoipa::path(post, path = "/admin/contracts", request_body = NewContract, security(("apiKey" = [])),
    responses((status = 201, description = "the contract"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn admin_create_contract(
    State(state): State<AppState>,
    _admin: AdminAuth,
    ApiJson(body): ApiJson<NewContract>,
) -> ApiResult<Response> {
    let contract = state.market.create_contract(body).await?;
    Ok(json(StatusCode::CREATED, &contract))
}

/// `GET /admin/contracts` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContractParams {
    pub buyer: Option<String>,
}

#[utoipa::path(get, path = "/admin/contracts", params(ContractParams), security(("apiKey" = [])),
    responses((status = 200, description = "contracts")))]
pub async fn admin_contracts(
    State(state): State<AppState>,
    _admin: AdminAuth,
    ApiQuery(params): ApiQuery<ContractParams>,
) -> ApiResult<Response> {
    Ok(json(
        StatusCode::OK,
        &state
            .market
            .store
            .contracts(params.buyer.as_deref())
            .await?,
    ))
}

#[utoipa::path(post, path = "/admin/contracts/{id}/end", params(("id" = String, Path)),
    security(("apiKey" = [])),
    responses((status = 200, description = "the ended contract"), (status = 404, body = ErrorBody)))]
pub async fn admin_end_contract(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    Ok(json(StatusCode::OK, &state.market.end_contract(&id).await?))
}

#[utoipa::path(put, path = "/admin/grants/{buyer}/{dataset}",
    params(("buyer" = String, Path), ("dataset" = String, Path)),
    request_body(content = GrantBody, description = "optional"), security(("apiKey" = [])),
    responses((status = 200, description = "the grant"), (status = 409, body = ErrorBody)))]
pub async fn admin_put_grant(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Path((buyer, dataset)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let body: GrantBody = optional_json(&body)?;
    let grant = state
        .market
        .grant(&buyer, &dataset, body.expires_at)
        .await?;
    Ok(json(StatusCode::OK, &grant))
}

#[utoipa::path(delete, path = "/admin/grants/{buyer}/{dataset}",
    params(("buyer" = String, Path), ("dataset" = String, Path)), security(("apiKey" = [])),
    responses((status = 204, description = "revoked"), (status = 404, body = ErrorBody)))]
pub async fn admin_revoke_grant(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Path((buyer, dataset)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.market.revoke_grant(&buyer, &dataset).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/admin/consent/{tenant}/{dataset}",
    params(("tenant" = String, Path), ("dataset" = String, Path)),
    request_body = ConsentBody, security(("apiKey" = [])),
    responses((status = 200, description = "the setting")))]
pub async fn admin_put_consent(
    State(state): State<AppState>,
    AdminAuth(who): AdminAuth,
    Path((tenant, dataset)): Path<(String, String)>,
    ApiJson(body): ApiJson<ConsentBody>,
) -> ApiResult<Response> {
    let s = state
        .market
        .set_consent(
            &tenant,
            &dataset,
            body.granted,
            body.revenue_share,
            &who.owner,
        )
        .await?;
    // The catalog's setting type is snake_case on the wire elsewhere; the API is camelCase.
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "tenant": s.tenant, "dataset": s.dataset, "granted": s.granted,
            "revenueShare": s.revenue_share, "updatedAt": s.updated_at, "updatedBy": s.updated_by,
        }),
    ))
}

#[utoipa::path(post, path = "/admin/revenue/{period}", params(("period" = String, Path, description = "YYYY-MM")),
    security(("apiKey" = [])),
    responses((status = 200, description = "the computed revenue-share lines"), (status = 400, body = ErrorBody)))]
pub async fn admin_compute_revenue(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Path(period): Path<String>,
) -> ApiResult<Response> {
    Ok(json(
        StatusCode::OK,
        &state.market.compute_revenue(&period).await?,
    ))
}

#[utoipa::path(get, path = "/admin/revenue/{period}", params(("period" = String, Path, description = "YYYY-MM")),
    security(("apiKey" = [])),
    responses((status = 200, description = "the stored revenue-share lines"), (status = 400, body = ErrorBody)))]
pub async fn admin_revenue(
    State(state): State<AppState>,
    _admin: AdminAuth,
    Path(period): Path<String>,
) -> ApiResult<Response> {
    Ok(json(StatusCode::OK, &state.market.revenue(&period).await?))
}

// ---- operations ----

/// Reachability of each backend.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: String,
    pub control_plane: String,
    pub consent: String,
    pub catalog: String,
}

/// Backend reachability: 200 when all answer, 503 otherwise.
#[utoipa::path(get, path = "/health", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<AppState>) -> Response {
    let m = &state.market;
    let verdict = |r: Result<(), catalog::Error>| match r {
        Ok(()) => "ok".to_owned(),
        Err(e) => {
            tracing::warn!(error = %catalog::chain(&e), "health check failed");
            "unreachable".to_owned()
        }
    };
    let control_plane = verdict(m.store.latest_version("health-check").await.map(drop));
    let consent = verdict(
        m.consent
            .consent("health-check", "health-check")
            .await
            .map(drop),
    );
    let catalog = verdict(m.catalog.table("health-check").await.map(drop));
    let ok = [&control_plane, &consent, &catalog]
        .iter()
        .all(|s| *s == "ok");
    let body = Health {
        status: if ok { "ok" } else { "degraded" }.into(),
        control_plane,
        consent,
        catalog,
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, &body)
}

/// Prometheus text (admin key: the release metrics name tenants and datasets).
#[utoipa::path(get, path = "/metrics", security(("apiKey" = [])),
    responses((status = 200, description = "Prometheus text exposition"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn metrics(State(state): State<AppState>, _admin: AdminAuth) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("spk_{key id}_{secret}")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "StackPro Data Marketplace", description = "Buyers find, license and download k-anonymous datasets through expiring signed URLs."),
    paths(get_datasets, post_signed_url, get_usage, get_file,
        admin_create_buyer, admin_buyers, admin_issue_key, admin_revoke_key, admin_put_listing,
        admin_create_contract, admin_contracts, admin_end_contract, admin_put_grant,
        admin_revoke_grant, admin_put_consent, admin_compute_revenue, admin_revenue,
        health, metrics),
    modifiers(&BearerScheme)
)]
pub struct ApiDoc;

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

async fn not_found() -> ApiError {
    ApiError::not_found("not_found", "no such endpoint")
}

/// Counts and times every answer by its route template (never the raw path, so the
/// label set stays bounded).
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // A fixed set: any other method string (clients may send any) would grow the
    // metric families without bound.
    let method = match request.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS") => m,
        _ => "OTHER",
    }
    .to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .observe(&route, &method, response.status().as_u16(), start.elapsed());
    response
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/datasets", get(get_datasets))
        .route("/datasets/{id}/signed-url", post(post_signed_url))
        .route("/usage", get(get_usage))
        .route("/files/{*path}", get(get_file))
        .route("/admin/buyers", post(admin_create_buyer).get(admin_buyers))
        .route("/admin/buyers/{id}/keys", post(admin_issue_key))
        .route(
            "/admin/keys/{key_id}",
            axum::routing::delete(admin_revoke_key),
        )
        .route("/admin/listings/{dataset}", put(admin_put_listing))
        .route(
            "/admin/contracts",
            post(admin_create_contract).get(admin_contracts),
        )
        .route("/admin/contracts/{id}/end", post(admin_end_contract))
        .route(
            "/admin/grants/{buyer}/{dataset}",
            put(admin_put_grant).delete(admin_revoke_grant),
        )
        .route("/admin/consent/{tenant}/{dataset}", put(admin_put_consent))
        .route(
            "/admin/revenue/{period}",
            post(admin_compute_revenue).get(admin_revenue),
        )
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
