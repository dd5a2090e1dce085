//! `stackpro policy check`: a policy file validated and shown field by field.

use super::*;

pub(super) fn policy_check(file: &std::path::Path) -> Result<ExitCode, Failure> {
    let policy = policies::Policy::load(file)?;
    println!("policy {} ({}) is valid", policy.id, policy.hash);
    println!(
        "k = {}, max suppression = {:.1}%",
        policy.k,
        policy.max_suppression * 100.0
    );
    println!(
        "retention: raw {} days, curated {} days",
        policy.retention.raw_days, policy.retention.curated_days
    );
    for (name, rules) in &policy.datasets {
        let mut table = new_table(["field", "column", "transform", "levels"]);
        for o in &rules.outputs {
            let (what, levels) = match &o.kind {
                policies::policy::OutputKind::Keep { data_type, .. } => {
                    (format!("keep ({data_type:?})"), String::new())
                }
                policies::policy::OutputKind::Hash => ("hash (HMAC-SHA256)".into(), String::new()),
                policies::policy::OutputKind::Day => ("truncate to day".into(), String::new()),
                policies::policy::OutputKind::Level0(_) => ("mask/truncate".into(), String::new()),
                policies::policy::OutputKind::QuasiIdentifier(h) => {
                    ("quasi-identifier".into(), h.height().to_string())
                }
            };
            table.add_row([o.field.clone(), o.column.clone(), what, levels]);
        }
        for d in &rules.dropped {
            table.add_row([d.clone(), String::new(), "drop".into(), String::new()]);
        }
        println!(
            "\ndataset {name}: subject {}, unnamed fields are dropped\n{table}",
            rules
                .subject
                .map(|s| rules.inputs[s].as_str())
                .unwrap_or("(none: one per record)")
        );
    }
    Ok(ExitCode::SUCCESS)
}
