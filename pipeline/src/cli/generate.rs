//! `stackpro gen`: realistic raw records into the raw layout or a file.

use super::*;
use pipeline::demo;

pub(super) fn gen_cmd(args: &GenArgs) -> Result<ExitCode, Failure> {
    if !synth::DATASETS.contains(&args.dataset.as_str()) {
        return Err(pipeline::Error::Config(format!(
            "unknown dataset `{}` (one of {:?})",
            args.dataset,
            synth::DATASETS
        ))
        .into());
    }
    let opts = synth::GenOptions {
        dataset: args.dataset.clone(),
        records: args.records,
        seed: args.seed,
        dirty: args.dirty,
        tenant: args.tenant.clone(),
        date: args.date,
        people: args.people,
        profile: args.profile,
    };
    let name = args
        .out
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let path = if catalog::layout::encoding_of(name).is_some() {
        args.out.clone()
    } else {
        let partition = catalog::layout::PartitionKey {
            dataset: args.dataset.clone(),
            tenant: args.tenant.clone(),
            dt: args.date.to_string(),
        };
        let object = format!("part-{:016x}.ndjson", args.seed);
        let key = catalog::layout::raw_path(&partition, "gen", &object).map_err(|e| match e {
            catalog::Error::Invalid(m) => pipeline::Error::InvalidArgument(m),
            other => other.into(),
        })?;
        args.out.join(key.as_ref())
    };
    let bar =
        ticking_bar("{spinner} [{elapsed_precise}] {bytes} of records ({bytes_per_sec}) {msg}");
    let stats = demo::write_raw_object_with(&path, &opts, &|n| bar.inc(n));
    bar.finish_and_clear();
    let stats = stats.with_context(|| format!("writing {}", path.display()))?;
    println!(
        "wrote {} records ({} deliberately bad, {} bytes) to {}",
        stats.records,
        stats.dirty,
        stats.bytes,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
