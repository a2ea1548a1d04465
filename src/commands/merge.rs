//! `rift merge DIR`: the shards of `rift mrc --shard I/N --session DIR` combined into the
//! result one `rift mrc` would give. It writes `DIR/mrc.yaml` (for `rift finetune
//! --mrc-result`) and `DIR/mrc_partial.yaml`, the per-module scores `rift run --session DIR`
//! continues from, so a following `rift run` on the same settings computes no MRC module
//! again and goes on to fine-tuning.
use super::mrc::print_mrc_table;
use crate::cli::MergeArgs;
use anyhow::{Context, Result};
use rift::engine::rift::mrc::shard::{merge as merge_shards, MergeError, ShardResult, SHARD_DIR};
use rift::engine::rift::mrc::stage::PARTIAL_MRC;

pub const MERGED: &str = "mrc.yaml";

pub fn merge(args: &MergeArgs) -> Result<()> {
    let dir = args.session.join(SHARD_DIR);
    let entries = std::fs::read_dir(&dir).with_context(|| {
        format!(
            "cannot read {}: expected the shard results `rift mrc --shard I/N --session {}` writes",
            dir.display(),
            args.session.display()
        )
    })?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut shards = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the shard result {}", path.display()))?;
        let shard: ShardResult = serde_yaml::from_str(&text).with_context(|| {
            format!(
                "{} is not a shard result of `rift mrc --shard` (it does not parse as one)",
                path.display()
            )
        })?;
        shards.push(shard);
    }
    let n = shards.len();
    let result = merge_shards(shards).map_err(|e| match e {
        MergeError::Empty(_) => MergeError::Empty(dir.display().to_string()),
        e => e,
    })?;
    rift::report::write_structured(&args.session.join(MERGED), &result)?;
    rift::report::write_structured(&args.session.join(PARTIAL_MRC), &result.modules)?;
    print_mrc_table(&result);
    eprintln!(
        "merged {n} shards ({} modules) into {}",
        result.modules.len(),
        args.session.join(MERGED).display()
    );
    if let Some(out) = &args.output {
        rift::report::write_structured(out, &result)?;
    }
    Ok(())
}
