//! `stackpro verify`: published files re-checked from scratch.

use super::*;

pub(super) fn verify_cmd(args: &VerifyArgs) -> Result<ExitCode, Failure> {
    let bar = ticking_bar("{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} files {msg}");
    let verdict = pipeline::verify::verify_path_with(&args.path, &|done, all| {
        bar.set_length(all as u64);
        bar.set_position(done as u64);
    });
    bar.finish_and_clear();
    let verdict = verdict?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&verdict)?);
    } else {
        let mut table = new_table([
            "release",
            "files",
            "rows",
            "classes",
            "smallest class",
            "k",
            "prosecutor risk",
            "average risk",
            "rows in classes < 2k",
        ]);
        for r in &verdict.releases {
            table.add_row([
                r.release_id.clone(),
                r.files.to_string(),
                r.rows.to_string(),
                r.classes.to_string(),
                r.smallest_class.to_string(),
                r.k.to_string(),
                format!("{:.4}", r.prosecutor_risk),
                format!("{:.4}", r.average_risk),
                format!("{:.1}%", 100.0 * r.small_class_share),
            ]);
        }
        println!("{table}");
        for e in &verdict.examples {
            println!(
                "raw {} in {} column {} row {}",
                e.kind, e.file, e.column, e.row
            );
        }
        for v in &verdict.violations {
            println!("VIOLATION: {v}");
        }
        println!(
            "{} files, {} rows: {}",
            verdict.files,
            verdict.rows,
            if verdict.ok() {
                "OK (k holds, no raw identifiers, nothing links releases or classes)"
            } else {
                "FAILED"
            }
        );
    }
    Ok(if verdict.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}
