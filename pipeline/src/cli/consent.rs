//! `stackpro consent`: grant, revoke and list tenants' consent per dataset.

use super::*;

pub(super) async fn consent_cmd(cli: &Cli, action: &ConsentAction) -> Result<ExitCode, Failure> {
    let config = load_config(cli)?;
    let consent = catalog::connect::connect(&config.backend_settings())
        .await?
        .consent;
    let set = |args: &ConsentArgs, granted: bool| ConsentSetting {
        tenant: args.tenant.clone(),
        dataset: args.dataset.clone(),
        granted,
        updated_at: chrono::Utc::now(),
        updated_by: std::env::var("USER").unwrap_or_else(|_| "stackpro cli".into()),
        revenue_share: args.revenue_share,
    };
    match action {
        ConsentAction::Grant(a) => {
            consent.set_consent(&set(a, true)).await?;
            println!("granted: {} may publish {}", a.tenant, a.dataset);
        }
        ConsentAction::Revoke(a) => {
            consent.set_consent(&set(a, false)).await?;
            println!("revoked: {} will not publish {}", a.tenant, a.dataset);
        }
        ConsentAction::List(filter) => {
            let mut table = new_table([
                "tenant",
                "dataset",
                "granted",
                "revenue share",
                "updated",
                "by",
            ]);
            let wanted =
                |value: &str, filter: &Option<String>| filter.as_deref().is_none_or(|f| f == value);
            for c in consent.consents().await?.into_iter().filter(|c| {
                wanted(&c.tenant, &filter.tenant) && wanted(&c.dataset, &filter.dataset)
            }) {
                table.add_row([
                    c.tenant,
                    c.dataset,
                    c.granted.to_string(),
                    c.revenue_share.to_string(),
                    c.updated_at.to_rfc3339(),
                    c.updated_by,
                ]);
            }
            println!("{table}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
