//! `/health`, `/metrics`, `/openapi.json`, and the JSON answer of unknown routes.

use axum::http::StatusCode;
use serde_json::json;

use crate::fixture::*;

#[tokio::test]
async fn health_metrics_and_the_openapi_document() {
    let f = fixture().await;
    let health = send(&f.state, get("/health", None)).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");
    assert_eq!(health.json()["controlPlane"], "ok");

    send(&f.state, signed_url_request(&f.buyer, &json!({}))).await;
    send(&f.state, get("/datasets", None)).await;
    let anonymous = send(&f.state, get("/metrics", None)).await;
    assert_eq!(
        (anonymous.status, anonymous.code().as_str()),
        (StatusCode::UNAUTHORIZED, "missing_api_key"),
        "the release metrics name tenants: admin only"
    );
    let buyer = send(&f.state, get("/metrics", Some(&f.buyer))).await;
    assert_eq!(buyer.code(), "admin_key_required");
    let hostile = axum::http::Request::builder()
        .method(axum::http::Method::from_bytes(b"XCOUNT").expect("method"))
        .uri("/datasets")
        .body(axum::body::Body::empty())
        .expect("request");
    send(&f.state, hostile).await;
    let metrics = send(&f.state, get("/metrics", Some(&f.admin))).await;
    let text = String::from_utf8(metrics.body).expect("utf-8");
    assert!(
        !text.contains("XCOUNT"),
        "unknown methods count as OTHER: {text}"
    );
    assert!(text.contains(r#"method="OTHER""#), "{text}");
    assert!(
        text.contains(r#"stackpro_http_requests_total{route="/datasets/{id}/signed-url",method="POST",status="200"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"stackpro_http_requests_total{route="/datasets",method="GET",status="401"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("stackpro_http_request_duration_seconds_bucket"),
        "{text}"
    );

    let doc = send(&f.state, get("/openapi.json", None)).await.json();
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let ops: Vec<&str> = doc["paths"]
        .as_object()
        .expect("paths")
        .values()
        .flat_map(|p| p.as_object().into_iter().flat_map(|m| m.values()))
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    for op in ["getDatasets", "getDataSignedUrl", "getUsage", "getFile"] {
        assert!(ops.contains(&op), "{op} in {ops:?}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["apiKey"]["scheme"],
        "bearer"
    );

    let nowhere = send(&f.state, get("/nowhere", None)).await;
    assert_eq!(
        (nowhere.status, nowhere.code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

#[tokio::test]
async fn datasets_are_paginated() {
    let f = fixture().await;
    for (n, ds) in ["aaa", "bbb"].iter().enumerate() {
        f.state
            .market
            .catalog
            .upsert_table(&catalog::conformance::sample_table(ds))
            .await
            .expect("table");
        let body = json!({"title": format!("Dataset {n}"), "description": ""});
        let put = send(
            &f.state,
            put_json(&format!("/admin/listings/{ds}"), &f.admin, &body),
        )
        .await;
        assert_eq!(put.status, StatusCode::OK, "{:?}", put.json());
    }
    let first = send(&f.state, get("/datasets", Some(&f.buyer)))
        .await
        .json();
    let ids: Vec<&str> = first["datasets"]
        .as_array()
        .expect("page")
        .iter()
        .map(|d| d["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, vec!["aaa", "bbb"], "max_page_size is 2");
    let cursor = first["nextCursor"].as_str().expect("more");
    let second = send(
        &f.state,
        get(&format!("/datasets?cursor={cursor}"), Some(&f.buyer)),
    )
    .await
    .json();
    assert_eq!(second["datasets"][0]["id"], DATASET);
    assert!(second["nextCursor"].is_null());
    assert_eq!(second["datasets"][0]["access"]["status"], "licensed");
    assert_eq!(first["datasets"][0]["access"]["status"], "no_contract");
}
