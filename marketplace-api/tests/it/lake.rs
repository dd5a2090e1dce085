//! Access grants mirrored into a data lake's permissions (Lake Formation on AWS, an
//! in-memory double here): always `dataset AND the consenting tenants`, and nothing once
//! the buyer is no longer entitled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use catalog::market::{LakeGrants, expression_terms};
use chrono::{TimeDelta, Utc};

use crate::fixture::*;

#[derive(Debug, Default)]
struct Lake {
    held: Mutex<HashMap<String, Vec<String>>>,
}

#[async_trait::async_trait]
impl LakeGrants for Lake {
    async fn granted(&self, principal: &str) -> catalog::Result<Vec<String>> {
        Ok(self
            .held
            .lock()
            .expect("lock")
            .get(principal)
            .cloned()
            .unwrap_or_default())
    }
    async fn grant(&self, principal: &str, expression: &str) -> catalog::Result<()> {
        self.held
            .lock()
            .expect("lock")
            .entry(principal.into())
            .or_default()
            .push(expression.into());
        Ok(())
    }
    async fn revoke(&self, principal: &str, expression: &str) -> catalog::Result<()> {
        if let Some(v) = self.held.lock().expect("lock").get_mut(principal) {
            v.retain(|e| e != expression);
        }
        Ok(())
    }
}

const ARN: &str = "arn:aws:iam::123456789012:role/b-lake";

#[tokio::test]
async fn mirrored_grants_follow_consent_and_the_contract() {
    let mut f = fixture().await;
    let lake = Arc::new(Lake::default());
    f.state.market = f.state.market.clone().with_lake_grants(Some(lake.clone()));
    let m = &f.state.market;
    m.create_buyer("b-lake", "Lake", Some(ARN))
        .await
        .expect("buyer");
    let contract = m
        .create_contract(marketplace_api::service::NewContract {
            id: None,
            buyer: "b-lake".into(),
            dataset: DATASET.into(),
            terms: "t".into(),
            price_minor: 1,
            currency: "EUR".into(),
            start: Utc::now() - TimeDelta::hours(1),
            end: Utc::now() + TimeDelta::days(1),
            plan: plan(10, 10, 10),
        })
        .await
        .expect("contract");
    let held = || {
        lake.held
            .lock()
            .expect("lock")
            .get(ARN)
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|e| expression_terms(e))
            .collect::<Vec<_>>()
    };
    assert!(held().is_empty(), "nothing before the grant");
    m.grant("b-lake", DATASET, None).await.expect("grant");
    assert_eq!(
        held(),
        vec![expression_terms("dataset=contacts AND tenant=t-1,t-2")]
    );
    consent(&f.state, "t-1", false).await;
    assert_eq!(
        held(),
        vec![expression_terms("dataset=contacts AND tenant=t-2")],
        "withdrawn consent leaves the lake too"
    );
    m.end_contract(&contract.id).await.expect("end");
    assert!(held().is_empty(), "an ended contract leaves no permission");
    // A buyer without a principal is never mirrored.
    assert!(lake.held.lock().expect("lock").keys().all(|k| k == ARN));
    let bad = m
        .create_buyer("b-bad", "Bad", Some("role/not-an-arn"))
        .await
        .expect_err("not an ARN");
    assert_eq!(bad.code, "invalid_request");
}
