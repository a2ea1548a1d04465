//! Out-of-distribution accuracy on the corrupted test sets (SPEC.md §3): per corruption and
//! severity, all selected severities pooled, the mean over the corruptions found, and the
//! published 18-corruption and standard-15 means when all their files are present.
use crate::engine::data::{
    list_corruptions, load_corrupted, severity_sizes, DataError, DatasetKind, PUBLISHED_18,
    STANDARD_15,
};
use crate::engine::models::{Model, ModelError};
use crate::engine::rift::events::{Event, Sink, Stage};
use crate::engine::rift::finetune::clean_accuracy;
use crate::engine::rift::mrc::results::{CorruptionAcc, OodResult};
use crate::engine::CancelFlag;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

#[derive(Debug, thiserror::Error)]
pub enum OodError {
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("the {dataset} images of {corruption} do not fit the model: {source}")]
    DoesNotFit {
        dataset: &'static str,
        corruption: String,
        source: ModelError,
    },
    #[error("libtorch error during OOD evaluation: {0}")]
    Torch(#[from] tch::TchError),
}

/// Severities used by the published code: all five for CIFAR-C, severity 1 for
/// Tiny-ImageNet-C; MNIST-C has only one.
pub fn default_severities(kind: DatasetKind) -> Vec<u8> {
    match kind {
        DatasetKind::TinyImageNetC | DatasetKind::MnistC => vec![1],
        _ => vec![1, 2, 3, 4, 5],
    }
}

/// Parses `1-5`, `3` or `1,3,5`.
pub fn parse_severities(s: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("`{s}` is not a severity list: use 1-5, 3 or 1,3,5 (severities 1..5)");
    let mut v: Vec<u8> = Vec::new();
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u8, u8) = (
                    a.trim().parse().map_err(|_| bad())?,
                    b.trim().parse().map_err(|_| bad())?,
                );
                if a > b {
                    return Err(bad());
                }
                v.extend(a..=b);
            }
            None => v.push(part.trim().parse().map_err(|_| bad())?),
        }
    }
    if v.is_empty() || v.iter().any(|&x| !(1..=5).contains(&x)) {
        return Err(bad());
    }
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// The corruption files found under `data_dir` for `kind`.
pub fn corruptions_found(kind: DatasetKind, data_dir: &Path) -> Result<Vec<String>, DataError> {
    match kind {
        DatasetKind::TinyImageNetC => {
            let dir = crate::engine::data::tiny_imagenet::find_c_dir(data_dir)?;
            Ok(crate::engine::data::tiny_imagenet::list_corruptions_tin(
                &dir,
            ))
        }
        DatasetKind::MnistC => {
            let dir = crate::engine::data::mnist_c::find_dir(data_dir)?;
            Ok(crate::engine::data::mnist_c::list_corruptions(&dir))
        }
        _ => Ok(list_corruptions(&crate::engine::data::cifar_c::find_dir(
            kind, data_dir,
        )?)),
    }
}

fn mean_over(names: &[&str], accs: &BTreeMap<String, f64>) -> Option<f64> {
    let vals: Option<Vec<f64>> = names.iter().map(|n| accs.get(*n).copied()).collect();
    vals.map(|v| v.iter().sum::<f64>() / v.len() as f64)
}

pub fn evaluate_ood(
    model: &Model,
    kind: DatasetKind,
    data_dir: &Path,
    severities: &[u8],
    batch_size: usize,
    cancel: &CancelFlag,
    sink: Sink,
) -> Result<OodResult, OodError> {
    let start = Instant::now();
    let names = corruptions_found(kind, data_dir)?;
    let mut corruptions = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if cancel.is_cancelled() {
            return Err(OodError::Cancelled);
        }
        let set = load_corrupted(kind, data_dir, name, severities)?;
        model
            .check_input(&[1, set.channels as i64, set.height as i64, set.width as i64])
            .map_err(|source| OodError::DoesNotFit {
                dataset: kind.name(),
                corruption: name.clone(),
                source,
            })?;
        // Severities come in order, in blocks of their own sizes (Tiny-ImageNet-C folders
        // may differ); the pooled accuracy weighs each by its size.
        let sizes = severity_sizes(kind, data_dir, name, severities, &set)?;
        let mut by_severity = BTreeMap::new();
        let mut total_correct = 0.0;
        let mut start = 0;
        for (&sev, &size) in severities.iter().zip(&sizes) {
            let idx: Vec<usize> = (start..start + size).collect();
            start += size;
            let acc = clean_accuracy(model, &set, Some(&idx), None, batch_size)?;
            total_correct += acc * size as f64;
            by_severity.insert(sev, acc);
        }
        let acc = total_correct / set.n.max(1) as f64;
        let result = CorruptionAcc {
            name: name.clone(),
            acc,
            by_severity,
            n: set.n,
        };
        sink(Event::Corruption {
            result: result.clone(),
        });
        sink(Event::Progress {
            stage: Stage::Ood,
            done: i + 1,
            total: names.len(),
        });
        corruptions.push(result);
    }
    let accs: BTreeMap<String, f64> = corruptions
        .iter()
        .map(|c| (c.name.clone(), c.acc))
        .collect();
    let mean_acc = if corruptions.is_empty() {
        0.0
    } else {
        accs.values().sum::<f64>() / accs.len() as f64
    };
    let mut missing: Vec<String> = PUBLISHED_18
        .iter()
        .chain(STANDARD_15.iter())
        .filter(|n| !accs.contains_key(**n))
        .map(|n| n.to_string())
        .collect();
    missing.sort();
    missing.dedup();
    Ok(OodResult {
        dataset: kind.name().to_string(),
        severities: severities.to_vec(),
        mean_acc,
        mean_published18: mean_over(&PUBLISHED_18, &accs),
        mean_standard15: mean_over(&STANDARD_15, &accs),
        corruptions,
        missing,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities() {
        assert_eq!(parse_severities("1-5").unwrap(), vec![1, 2, 3, 4, 5]);
        assert_eq!(parse_severities("3").unwrap(), vec![3]);
        assert_eq!(parse_severities("5,1").unwrap(), vec![1, 5]);
        assert!(parse_severities("0-6").is_err());
        assert!(parse_severities("a").is_err());
    }
}
