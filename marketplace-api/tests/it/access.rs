//! The authorization matrix: every refusal with its status and stable error code, for
//! the API's keys, the contract and grant behind a URL, and the signed file URLs.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use catalog::market::Role;
use marketplace_api::secrets::UrlKeys;
use serde_json::json;

use crate::fixture::*;

fn with_auth(value: &str) -> Request<Body> {
    Request::post(format!("/datasets/{DATASET}/signed-url"))
        .header(header::AUTHORIZATION, value)
        .body(Body::empty())
        .expect("request")
}

fn no_auth() -> Request<Body> {
    Request::post(format!("/datasets/{DATASET}/signed-url"))
        .body(Body::empty())
        .expect("request")
}

#[tokio::test]
async fn key_refusals() {
    let f = fixture().await;
    let m = &f.state.market;
    let unknown = marketplace_api::secrets::KeyHasher::new(PEPPER.as_bytes())
        .expect("pepper")
        .issue()
        .token;
    let (revoked, key) = m.issue_key("b-acme", Role::Buyer).await.expect("key");
    m.revoke_key(&key.key_id).await.expect("revoke");
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "no key",
            no_auth(),
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
        ),
        (
            "basic auth",
            with_auth("Basic dXNlcjpwYXNz"),
            StatusCode::UNAUTHORIZED,
            "malformed_authorization",
        ),
        (
            "empty bearer",
            with_auth("Bearer "),
            StatusCode::UNAUTHORIZED,
            "malformed_authorization",
        ),
        (
            "not a key",
            with_auth("Bearer hello"),
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
        (
            "unknown key",
            with_auth(&format!("Bearer {unknown}")),
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
        (
            "wrong secret",
            with_auth(&format!("Bearer {}", swap_secret(&f.buyer))),
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
        ),
        (
            "revoked key",
            with_auth(&format!("Bearer {}", revoked.token)),
            StatusCode::UNAUTHORIZED,
            "revoked_api_key",
        ),
        (
            "admin key on a buyer endpoint",
            with_auth(&format!("Bearer {}", f.admin)),
            StatusCode::FORBIDDEN,
            "buyer_key_required",
        ),
        (
            "buyer key on an admin endpoint",
            get("/admin/buyers", Some(&f.buyer)),
            StatusCode::FORBIDDEN,
            "admin_key_required",
        ),
        (
            "no key on an admin endpoint",
            get("/admin/buyers", None),
            StatusCode::UNAUTHORIZED,
            "missing_api_key",
        ),
    ];
    for (what, request, status, code) in cases {
        let answer = send(&f.state, request).await;
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (status, code),
            "{what}: {:?}",
            answer.json()
        );
        assert!(answer.json()["message"].is_string(), "{what}");
    }
    // The admin key works where it should.
    assert_eq!(
        send(&f.state, get("/admin/buyers", Some(&f.admin)))
            .await
            .status,
        StatusCode::OK
    );
}

/// The same key id with another secret.
fn swap_secret(token: &str) -> String {
    let (head, _) = token.rsplit_once('_').expect("token");
    format!("{head}_{}", "0".repeat(64))
}

#[tokio::test]
async fn contract_and_grant_refusals() {
    let f = fixture().await;
    let m = &f.state.market;
    // Another buyer with no contract on the dataset.
    m.create_buyer("b-other", "Other", None)
        .await
        .expect("buyer");
    let (other, _) = m.issue_key("b-other", Role::Buyer).await.expect("key");
    // A buyer whose contract ended.
    let (ended, ended_contract) = licensed_buyer(&f.state, "b-ended", plan(100, 100, 100)).await;
    m.end_contract(&ended_contract).await.expect("end");
    // A buyer whose contract ran out (its end passed; nobody ended it).
    m.create_buyer("b-expired", "Expired", None)
        .await
        .expect("buyer");
    let (expired, _) = m.issue_key("b-expired", Role::Buyer).await.expect("key");
    // Long enough for a slow machine to grant and sign inside it; waited out below.
    let expires = chrono::Utc::now() + chrono::TimeDelta::seconds(3);
    m.create_contract(marketplace_api::service::NewContract {
        id: None,
        buyer: "b-expired".into(),
        dataset: DATASET.into(),
        terms: "t".into(),
        price_minor: 1,
        currency: "EUR".into(),
        start: chrono::Utc::now() - chrono::TimeDelta::days(1),
        end: expires,
        plan: plan(10, 10, 10),
    })
    .await
    .expect("contract");
    m.grant("b-expired", DATASET, None).await.expect("grant");
    assert_eq!(
        send(&f.state, signed_url_request(&expired.token, &json!({})))
            .await
            .status,
        StatusCode::OK
    );
    let left = (expires - chrono::Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + std::time::Duration::from_millis(100)).await;
    // A buyer whose grant was revoked.
    let (revoked, _) = licensed_buyer(&f.state, "b-revoked", plan(100, 100, 100)).await;
    m.revoke_grant("b-revoked", DATASET).await.expect("revoke");
    // A buyer with a contract but no grant yet.
    m.create_buyer("b-nogrant", "No grant", None)
        .await
        .expect("buyer");
    let (nogrant, _) = m.issue_key("b-nogrant", Role::Buyer).await.expect("key");
    m.create_contract(marketplace_api::service::NewContract {
        id: None,
        buyer: "b-nogrant".into(),
        dataset: DATASET.into(),
        terms: "t".into(),
        price_minor: 1,
        currency: "EUR".into(),
        start: chrono::Utc::now() - chrono::TimeDelta::hours(1),
        end: chrono::Utc::now() + chrono::TimeDelta::days(1),
        plan: plan(10, 10, 10),
    })
    .await
    .expect("contract");
    let url = |ds: &str| format!("/datasets/{ds}/signed-url");
    let cases: Vec<(&str, Request<Body>, StatusCode, &str)> = vec![
        (
            "another buyer's dataset",
            signed_url_request(&other.token, &json!({})),
            StatusCode::FORBIDDEN,
            "no_contract",
        ),
        (
            "ended contract",
            signed_url_request(&ended, &json!({})),
            StatusCode::FORBIDDEN,
            "contract_not_in_force",
        ),
        (
            "expired contract",
            signed_url_request(&expired.token, &json!({})),
            StatusCode::FORBIDDEN,
            "contract_not_in_force",
        ),
        (
            "revoked grant",
            signed_url_request(&revoked, &json!({})),
            StatusCode::FORBIDDEN,
            "grant_revoked",
        ),
        (
            "no grant",
            signed_url_request(&nogrant.token, &json!({})),
            StatusCode::FORBIDDEN,
            "no_grant",
        ),
        (
            "unknown dataset",
            post_json(&url("nope"), Some(&f.buyer), &json!({})),
            StatusCode::NOT_FOUND,
            "dataset_not_found",
        ),
        (
            "unknown version",
            signed_url_request(&f.buyer, &json!({"version": 99})),
            StatusCode::NOT_FOUND,
            "version_not_found",
        ),
        (
            "lifetime over the maximum",
            signed_url_request(&f.buyer, &json!({"expiresIn": 86_400})),
            StatusCode::BAD_REQUEST,
            "invalid_expiry",
        ),
        (
            "zero lifetime",
            signed_url_request(&f.buyer, &json!({"expiresIn": 0})),
            StatusCode::BAD_REQUEST,
            "invalid_expiry",
        ),
        (
            "unknown field",
            signed_url_request(&f.buyer, &json!({"release": "x"})),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            "not JSON",
            post_raw(&url(DATASET), &f.buyer, "{"),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
    ];
    for (what, request, status, code) in cases {
        let answer = send(&f.state, request).await;
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (status, code),
            "{what}: {:?}",
            answer.json()
        );
    }
    // None of the refusals was counted as usage (the one event is the expired buyer's
    // request while its contract was in force).
    let events = m
        .store
        .usage_events(
            None,
            chrono::Utc::now() - chrono::TimeDelta::days(1),
            chrono::Utc::now() + chrono::TimeDelta::days(1),
        )
        .await
        .expect("events");
    assert_eq!(
        events.iter().map(|e| e.buyer.as_str()).collect::<Vec<_>>(),
        vec!["b-expired"],
        "{events:?}"
    );
    // A revoked key or grant takes effect at once; the licensed buyer still gets URLs.
    assert_eq!(
        send(&f.state, signed_url_request(&f.buyer, &json!({})))
            .await
            .status,
        StatusCode::OK
    );
}

fn post_raw(uri: &str, token: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .expect("request")
}

#[tokio::test]
async fn signed_url_refusals() {
    let f = fixture().await;
    let body = send(&f.state, signed_url_request(&f.buyer, &json!({})))
        .await
        .json();
    let first = local_part(body["files"][0]["url"].as_str().expect("url"));
    let second = local_part(body["files"][1]["url"].as_str().expect("url"));
    let (path1, query1) = first.split_once('?').expect("query");
    let (path2, _) = second.split_once('?').expect("query");
    assert_eq!(
        send(&f.state, get(&first, None)).await.status,
        StatusCode::OK
    );

    let keys = UrlKeys::parse(URL_KEYS).expect("keys");
    let rel1 = path1.trim_start_matches("/files/");
    let past = chrono::Utc::now().timestamp() - 1;
    let (kid, sig) = keys.sign(rel1, past);
    let expired = format!("{path1}?exp={past}&kid={kid}&sig={sig}");
    let tampered = first.replace("sig=", "sig=00");
    let flipped = {
        let (head, sig) = first.rsplit_once("sig=").expect("sig");
        let mut s: Vec<u8> = sig.bytes().collect();
        s[0] = if s[0] == b'a' { b'b' } else { b'a' };
        format!("{head}sig={}", String::from_utf8(s).expect("hex"))
    };
    let replayed = format!("{path2}?{query1}");
    let longer = first.replace("exp=", "exp=9");
    let other_kid = first.replace("kid=k1", "kid=k2");

    // A symlink under the curated root, pointing out of it, signed as if published.
    let outside = f.dir.path().join("secret.txt");
    std::fs::write(&outside, "TOP-SECRET-OUTSIDE").expect("secret");
    let link_rel = format!("dataset={DATASET}/leak.parquet");
    std::os::unix::fs::symlink(&outside, f.dir.path().join("curated").join(&link_rel))
        .expect("symlink");
    let exp = chrono::Utc::now().timestamp() + 600;
    let (kid, sig) = keys.sign(&link_rel, exp);
    let symlink = format!("/files/{link_rel}?exp={exp}&kid={kid}&sig={sig}");
    // A folder, signed.
    let folder_rel = format!("dataset={DATASET}");
    let (kid, sig) = keys.sign(&folder_rel, exp);
    let folder = format!("/files/{folder_rel}?exp={exp}&kid={kid}&sig={sig}");
    // A path outside the root, signed (the signature alone must not be enough).
    let (kid, sig) = keys.sign("../secret.txt", exp);
    let escaped_signed = format!("/files/%2e%2e/secret.txt?exp={exp}&kid={kid}&sig={sig}");

    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        (
            "tampered signature",
            tampered,
            StatusCode::FORBIDDEN,
            "signature_invalid",
        ),
        (
            "one flipped digit",
            flipped,
            StatusCode::FORBIDDEN,
            "signature_invalid",
        ),
        ("expired URL", expired, StatusCode::FORBIDDEN, "url_expired"),
        (
            "expiry pushed later",
            longer,
            StatusCode::FORBIDDEN,
            "signature_invalid",
        ),
        (
            "another key id",
            other_kid,
            StatusCode::FORBIDDEN,
            "signature_invalid",
        ),
        (
            "URL of one file replayed for another",
            replayed,
            StatusCode::FORBIDDEN,
            "signature_invalid",
        ),
        (
            "no signature",
            path1.to_owned(),
            StatusCode::FORBIDDEN,
            "signature_invalid",
        ),
        (
            "dot-dot",
            format!("/files/dataset={DATASET}/../../secret.txt?{query1}"),
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            "encoded dot-dot",
            format!("/files/dataset={DATASET}/%2e%2e/%2e%2e/secret.txt?{query1}"),
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            "encoded dot-dot, signed",
            escaped_signed,
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            "encoded slash",
            format!("/files/dataset={DATASET}%2f..%2fsecret.txt?{query1}"),
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            "absolute path",
            format!("/files//etc/passwd?{query1}"),
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            "encoded absolute path",
            format!("/files/%2fetc%2fpasswd?{query1}"),
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            "backslashes",
            format!("/files/..%5c..%5csecret.txt?{query1}"),
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            "symlink under the curated root",
            symlink,
            StatusCode::FORBIDDEN,
            "path_refused",
        ),
        ("a folder", folder, StatusCode::FORBIDDEN, "path_refused"),
    ];
    for (what, uri, status, code) in cases {
        let answer = send(&f.state, get(&uri, None)).await;
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (status, code),
            "{what}: {uri}"
        );
        assert!(
            !answer.body.windows(8).any(|w| w == b"TOP-SECR"),
            "{what}: leaked the file"
        );
    }
}

#[tokio::test]
async fn admin_actions_over_http() {
    let f = fixture().await;
    let created = send(
        &f.state,
        post_json(
            "/admin/buyers",
            Some(&f.admin),
            &json!({"id": "b-new", "name": "New"}),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.json());
    let dup = send(
        &f.state,
        post_json(
            "/admin/buyers",
            Some(&f.admin),
            &json!({"id": "b-new", "name": "New"}),
        ),
    )
    .await;
    assert_eq!(
        (dup.status, dup.code().as_str()),
        (StatusCode::CONFLICT, "conflict")
    );
    let key = send(
        &f.state,
        post_json("/admin/buyers/b-new/keys", Some(&f.admin), &json!(null)),
    )
    .await;
    assert_eq!(key.status, StatusCode::CREATED);
    let token = key.json()["token"].as_str().expect("token").to_owned();
    let contract = send(&f.state, post_json("/admin/contracts", Some(&f.admin), &json!({
        "buyer": "b-new", "dataset": DATASET, "terms": "t", "priceMinor": 5000, "currency": "USD",
        "start": chrono::Utc::now() - chrono::TimeDelta::minutes(1), "end": chrono::Utc::now() + chrono::TimeDelta::days(3),
        "plan": {"ratePerSec": 5, "burst": 5, "quota": 50, "period": "week"}
    }))).await;
    assert_eq!(
        contract.status,
        StatusCode::CREATED,
        "{:?}",
        contract.json()
    );
    let cid = contract.json()["id"].as_str().expect("id").to_owned();
    let no_grant = send(&f.state, signed_url_request(&token, &json!({}))).await;
    assert_eq!(no_grant.code(), "no_grant");
    let grant = send(
        &f.state,
        put_json(
            &format!("/admin/grants/b-new/{DATASET}"),
            &f.admin,
            &json!({}),
        ),
    )
    .await;
    assert_eq!(grant.status, StatusCode::OK, "{:?}", grant.json());
    let ok = send(&f.state, signed_url_request(&token, &json!({}))).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.json()["quota"]["period"], "week");
    let bad_contract = send(&f.state, post_json("/admin/contracts", Some(&f.admin), &json!({
        "buyer": "b-new", "dataset": DATASET, "terms": "t", "priceMinor": 5000, "currency": "usd",
        "start": chrono::Utc::now(), "end": chrono::Utc::now() + chrono::TimeDelta::days(3),
        "plan": {"ratePerSec": 5, "burst": 5, "quota": 50, "period": "week"}
    }))).await;
    assert_eq!(
        (bad_contract.status, bad_contract.code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let consent = send(
        &f.state,
        put_json(
            &format!("/admin/consent/t-2/{DATASET}"),
            &f.admin,
            &json!({"granted": false}),
        ),
    )
    .await;
    assert_eq!(consent.status, StatusCode::OK);
    assert_eq!(consent.json()["updatedBy"], "ops", "{:?}", consent.json());
    let files = send(&f.state, signed_url_request(&token, &json!({})))
        .await
        .json()["files"]
        .as_array()
        .map(Vec::len);
    assert_eq!(
        files,
        Some(2),
        "t-2's withdrawn consent took effect on the next request"
    );
    let ended = send(
        &f.state,
        post_json(
            &format!("/admin/contracts/{cid}/end"),
            Some(&f.admin),
            &json!(null),
        ),
    )
    .await;
    assert_eq!(ended.json()["status"], "ended");
    assert_eq!(
        send(&f.state, signed_url_request(&token, &json!({})))
            .await
            .code(),
        "contract_not_in_force"
    );
    let revoke = send(
        &f.state,
        delete(
            &format!("/admin/keys/{}", token.split('_').nth(1).expect("id")),
            &f.admin,
        ),
    )
    .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    assert_eq!(
        send(&f.state, signed_url_request(&token, &json!({})))
            .await
            .code(),
        "revoked_api_key"
    );
    let gone = send(&f.state, delete("/admin/keys/0000000000000000", &f.admin)).await;
    assert_eq!(
        (gone.status, gone.code().as_str()),
        (StatusCode::NOT_FOUND, "key_not_found")
    );
}
