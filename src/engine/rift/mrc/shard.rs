//! MRC across a cluster: modules are independent (SPEC.md §1), so `rift mrc --shard I/N`
//! scores a deterministic slice of them and `rift merge` combines the slices. Module `k`
//! (forward order among the selected modules) belongs to shard `k mod N`: round-robin
//! spreads cheap early and costly late modules evenly. Every shard builds the same
//! adversarial set (same split, limit, attack and seed); the merge checks that they did by
//! comparing the unperturbed model's loss on it, which any difference would change.
use crate::engine::models::ModuleInfo;
use crate::engine::rift::mrc::results::MrcResult;
use crate::engine::rift::mrc::{finish, MeasuredOn, MrcConfig, Variant};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where shard results go inside a session directory.
pub const SHARD_DIR: &str = "mrc_shards";

/// Shard `index` (from 0) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// `I/N` with 0 ≤ I < N (Slurm's `$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT` for an
    /// array `--array=0-(N-1)`).
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{s}` is not a shard: use I/N with 0 ≤ I < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// This shard's modules, in forward order.
    pub fn select(&self, modules: &[(usize, ModuleInfo)]) -> Vec<(usize, ModuleInfo)> {
        modules
            .iter()
            .enumerate()
            .filter(|(k, _)| k % self.count == self.index)
            .map(|(_, m)| m.clone())
            .collect()
    }

    pub fn path(&self, session: &Path) -> PathBuf {
        session
            .join(SHARD_DIR)
            .join(format!("shard-{}-of-{}.yaml", self.index, self.count))
    }
}

/// One shard's output: its scores (an `MrcResult` of its modules) and what the whole job
/// was, so the merge can tell whether every module is there.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ShardResult {
    pub shard: Shard,
    /// Every module of the job (all shards), in forward order.
    pub all_modules: Vec<String>,
    pub result: MrcResult,
}

/// `shard 1 of 3 is missing` / `shards 1,2 of 4 are missing`: every one, so a cluster
/// user resubmits them all at once.
fn missing_text(missing: &[usize], count: usize) -> String {
    match missing {
        [one] => format!("shard {one} of {count} is missing"),
        many => format!("shards {} of {count} are missing", join(many)),
    }
}

fn join(v: &[usize]) -> String {
    v.iter().map(usize::to_string).collect::<Vec<_>>().join(",")
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MergeError {
    #[error("no shard results under {0}: run `rift mrc --shard I/N --session DIR` first")]
    Empty(String),
    #[error("the shards disagree on {what}: {a} in shard {i} but {b} in shard {j}; they belong to different jobs")]
    Mismatch {
        what: &'static str,
        a: String,
        b: String,
        i: usize,
        j: usize,
    },
    #[error("{} (found {found}); rerun {} with `rift mrc --shard I/{count}` for each, or on Slurm `scripts/slurm/submit-mrc.sh --only {} {count} DIR -- …`", missing_text(missing, *count), if missing.len() == 1 { "it" } else { "them" }, join(missing))]
    Missing {
        /// Every missing shard index, ascending.
        missing: Vec<usize>,
        count: usize,
        found: String,
    },
    #[error("module {module} has no score (shard {shard} of {count} does not hold it)")]
    ModuleMissing {
        module: String,
        shard: usize,
        count: usize,
    },
}

/// Combines the shards of one job into the result a single `rift mrc` would give.
pub fn merge(mut shards: Vec<ShardResult>) -> Result<MrcResult, MergeError> {
    shards.sort_by_key(|s| s.shard.index);
    let Some(first) = shards.first().cloned() else {
        return Err(MergeError::Empty(String::new()));
    };
    let r0 = &first.result;
    for s in &shards[1..] {
        let r = &s.result;
        let checks: [(&'static str, String, String); 7] = [
            (
                "the shard count",
                first.shard.count.to_string(),
                s.shard.count.to_string(),
            ),
            (
                "the module list",
                first.all_modules.join(","),
                s.all_modules.join(","),
            ),
            ("the MRC variant", r0.variant.clone(), r.variant.clone()),
            (
                "ε, epochs, lr and batch size",
                format!("{} {} {} {}", r0.epsilon, r0.epochs, r0.lr, r0.batch_size),
                format!("{} {} {} {}", r.epsilon, r.epochs, r.lr, r.batch_size),
            ),
            (
                "the adversarial split and size",
                format!("{} {}", r0.adv_split, r0.adv_n),
                format!("{} {}", r.adv_split, r.adv_n),
            ),
            // The same adversarial set gives bit-identical baselines; anything else does not.
            (
                "the adversarial set (its baseline loss and accuracy)",
                format!("{:e} {:e}", r0.baseline_loss, r0.baseline_acc),
                format!("{:e} {:e}", r.baseline_loss, r.baseline_acc),
            ),
            ("the fast path", r0.fast.to_string(), r.fast.to_string()),
        ];
        for (what, a, b) in checks {
            if a != b {
                return Err(MergeError::Mismatch {
                    what,
                    a,
                    b,
                    i: first.shard.index,
                    j: s.shard.index,
                });
            }
        }
    }
    let count = first.shard.count;
    let found: Vec<usize> = shards.iter().map(|s| s.shard.index).collect();
    let missing: Vec<usize> = (0..count).filter(|i| !found.contains(i)).collect();
    if !missing.is_empty() {
        let found: Vec<String> = found.iter().map(|i| i.to_string()).collect();
        return Err(MergeError::Missing {
            missing,
            count,
            found: found.join(", "),
        });
    }
    let scores: Vec<_> = shards
        .iter()
        .flat_map(|s| s.result.modules.iter().cloned())
        .collect();
    for (k, name) in first.all_modules.iter().enumerate() {
        if !scores.iter().any(|m| &m.name == name) {
            return Err(MergeError::ModuleMissing {
                module: name.clone(),
                shard: k % count,
                count,
            });
        }
    }
    let cfg = MrcConfig {
        epsilon: r0.epsilon,
        epochs: r0.epochs,
        lr: r0.lr,
        batch_size: r0.batch_size,
        variant: Variant::parse(&r0.variant).unwrap_or(Variant::Code),
        fast: r0.fast,
        seed: 0,
        cache_budget_mib: None,
    };
    // The slowest shard bounds the wall time; the sum is the compute spent.
    let seconds = shards.iter().map(|s| s.result.seconds).sum();
    let on = MeasuredOn {
        split: &r0.adv_split,
        n: r0.adv_n,
        baseline: (r0.baseline_loss, r0.baseline_acc),
    };
    Ok(finish(scores, &cfg, &on, seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_missing_shard_is_named() {
        let one = MergeError::Missing {
            missing: vec![1],
            count: 3,
            found: "0, 2".into(),
        }
        .to_string();
        assert!(
            one.starts_with("shard 1 of 3 is missing (found 0, 2)"),
            "{one}"
        );
        assert!(one.contains("--only 1 3 DIR"), "{one}");
        let two = MergeError::Missing {
            missing: vec![1, 3],
            count: 4,
            found: "0, 2".into(),
        }
        .to_string();
        assert!(two.starts_with("shards 1,3 of 4 are missing"), "{two}");
        assert!(
            two.contains("rerun them") && two.contains("--only 1,3 4 DIR"),
            "{two}"
        );
    }

    #[test]
    fn parse_and_slice() {
        assert_eq!(Shard::parse("1/4"), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1/0", "a/2", "3", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let modules: Vec<(usize, ModuleInfo)> = (0..7)
            .map(|d| {
                (
                    d,
                    ModuleInfo {
                        name: format!("m{d}"),
                        kind: "conv".into(),
                        shape: vec![1],
                        params: 1,
                    },
                )
            })
            .collect();
        let mut all = Vec::new();
        for i in 0..3 {
            let s = Shard { index: i, count: 3 };
            all.extend(s.select(&modules).into_iter().map(|(d, _)| d));
        }
        all.sort();
        assert_eq!(
            all,
            (0..7).collect::<Vec<_>>(),
            "every module in exactly one shard"
        );
        let s1 = Shard { index: 1, count: 3 }.select(&modules);
        assert_eq!(s1.iter().map(|(d, _)| *d).collect::<Vec<_>>(), [1, 4]);
    }
}
