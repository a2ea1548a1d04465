//! Input normalisation is a property of the model, not of the dataset: Carmon 2019 and
//! TRADES models take raw [0, 1] pixels, Engstrom 2019 uses its own std, DM models keep
//! `mean`/`std` as non-persistent buffers (absent from the file), RobustBench wrappers save
//! `mu`/`sigma`. `--normalize` says which; every output states what was used and why.
use super::ModelError;
use crate::engine::checkpoint::RawTensor;
use crate::engine::data::DatasetKind;
use crate::engine::tensors::to_tensor;
use tch::{Device, Kind, Tensor};

/// The CIFAR-100 training-set statistics (RobustBench's DM code uses these for its
/// CIFAR-100 models; rift's `--dataset cifar100` keeps the RiFT code's CIFAR-10 values).
const CIFAR100_MEAN: [f32; 3] = [0.5071, 0.4865, 0.4409];
const CIFAR100_STD: [f32; 3] = [0.2673, 0.2564, 0.2762];

/// `--normalize`: what the user asked for.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum NormalizeChoice {
    /// The checkpoint's `mu`/`sigma` (or `mean`/`std`) when present, else the dataset's.
    #[default]
    Auto,
    /// Raw [0, 1] pixels.
    None,
    /// Statistics by name: cifar10, cifar100, imagenet, mnist.
    Named(String),
    /// `M1,M2,M3/S1,S2,S3`.
    Custom { mean: Vec<f32>, std: Vec<f32> },
    /// `per-image`: each image standardised by its own mean and standard deviation over
    /// all its pixels and channels, `(x − mean(x)) / max(std(x), 1/√(C·H·W))` with the
    /// unbiased std (robustbench's Ding2020MMANet forward).
    PerImage,
}

impl NormalizeChoice {
    pub fn parse(text: &str) -> Result<NormalizeChoice, String> {
        let lower = text.trim().to_ascii_lowercase();
        match lower.as_str() {
            "auto" => return Ok(NormalizeChoice::Auto),
            "none" => return Ok(NormalizeChoice::None),
            "per-image" => return Ok(NormalizeChoice::PerImage),
            "cifar10" | "cifar100" | "imagenet" | "mnist" => {
                return Ok(NormalizeChoice::Named(lower));
            }
            _ => {}
        }
        let expected = "expected auto, none, cifar10, cifar100, imagenet, mnist, per-image, or per-channel MEANS/STDS such as 0.5,0.5,0.5/0.25,0.25,0.25";
        let Some((m, s)) = lower.split_once('/') else {
            return Err(format!("`{text}` is not a normalisation; {expected}"));
        };
        let numbers = |part: &str| -> Result<Vec<f32>, String> {
            part.split(',')
                .map(|v| {
                    v.trim()
                        .parse::<f32>()
                        .ok()
                        .filter(|x| x.is_finite())
                        .ok_or_else(|| format!("`{v}` in `{text}` is not a number; {expected}"))
                })
                .collect()
        };
        let (mean, std) = (numbers(m)?, numbers(s)?);
        if mean.len() != std.len() {
            return Err(format!(
                "`{text}` gives {} means but {} stds; {expected}",
                mean.len(),
                std.len()
            ));
        }
        if std.iter().any(|s| *s <= 0.0) {
            return Err(format!("`{text}`: every std must be positive"));
        }
        Ok(NormalizeChoice::Custom { mean, std })
    }

    /// The flag's text (parses back to the same choice).
    pub fn text(&self) -> String {
        let join = |v: &[f32]| v.iter().map(f32::to_string).collect::<Vec<_>>().join(",");
        match self {
            NormalizeChoice::Auto => "auto".into(),
            NormalizeChoice::None => "none".into(),
            NormalizeChoice::PerImage => "per-image".into(),
            NormalizeChoice::Named(n) => n.clone(),
            NormalizeChoice::Custom { mean, std } => format!("{}/{}", join(mean), join(std)),
        }
    }

    fn named_stats(name: &str) -> (Vec<f32>, Vec<f32>) {
        match name {
            "cifar100" => (CIFAR100_MEAN.to_vec(), CIFAR100_STD.to_vec()),
            "imagenet" => DatasetKind::TinyImageNet.mean_std(),
            "mnist" => DatasetKind::Mnist.mean_std(),
            _ => DatasetKind::Cifar10.mean_std(),
        }
    }
}

/// Where the normalisation in use came from.
#[derive(Clone, Debug, PartialEq)]
pub enum NormSource {
    /// `auto` without checkpoint statistics: the dataset's (named).
    Dataset(String),
    /// `auto` with the checkpoint's own buffers (their keys, e.g. `mu`/`sigma`).
    Checkpoint(String, String),
    /// Chosen with `--normalize` (none, a name, or numbers).
    Flag,
}

/// The normalisation a model applies and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Normalization {
    pub choice: NormalizeChoice,
    pub source: NormSource,
}

impl Normalization {
    /// A few words for narrow places (the explorer's model line).
    pub fn short(&self) -> String {
        match (&self.source, &self.choice) {
            (NormSource::Dataset(d), _) => format!("{d} mean/std, auto"),
            (NormSource::Checkpoint(m, s), _) => format!("checkpoint {m}/{s}, auto"),
            (NormSource::Flag, NormalizeChoice::None) => "no normalization".into(),
            (NormSource::Flag, NormalizeChoice::PerImage) => "per-image standardisation".into(),
            (NormSource::Flag, NormalizeChoice::Named(n)) => format!("{n} mean/std"),
            (NormSource::Flag, c) => format!("mean/std {}", c.text()),
        }
    }

    /// One line for every output: what is applied and where it came from.
    pub fn describe(&self) -> String {
        match (&self.source, &self.choice) {
            (NormSource::Dataset(d), _) => format!(
                "{d} dataset mean/std (--normalize auto; the checkpoint has no mu/sigma or mean/std)"
            ),
            (NormSource::Checkpoint(m, s), _) => {
                format!("the checkpoint's {m}/{s} (--normalize auto)")
            }
            (NormSource::Flag, NormalizeChoice::None) => {
                "none: raw [0, 1] pixels (--normalize none)".into()
            }
            (NormSource::Flag, NormalizeChoice::PerImage) => {
                "per-image standardisation: (x - mean(x)) / max(std(x), 1/sqrt(C*H*W)) (--normalize per-image)".into()
            }
            (NormSource::Flag, NormalizeChoice::Named(n)) => {
                format!("{n} mean/std (--normalize {n})")
            }
            (NormSource::Flag, c) => format!("mean/std {} (--normalize)", c.text()),
        }
    }
}

/// A checkpoint's own statistics, as they are stored (kept in the state either way).
pub(super) struct StoredStats<'a> {
    pub keys: (&'static str, &'static str),
    pub mean: &'a RawTensor,
    pub std: &'a RawTensor,
}

/// The first of `mu`/`sigma`, `mean`/`std`, `normalize.mean`/`normalize.std`
/// (robustbench's `normalize_model` wrapper), `normalization.mean`/`normalization.std`
/// (robustarch's `NormalizeByChannelMeanStd`, the ImageNet RaResNet's) that the checkpoint
/// holds as a pair.
pub(super) fn stored_stats<'a>(
    get: impl Fn(&str) -> Option<&'a RawTensor>,
) -> Option<StoredStats<'a>> {
    [
        ("mu", "sigma"),
        ("mean", "std"),
        ("normalize.mean", "normalize.std"),
        ("normalization.mean", "normalization.std"),
    ]
    .into_iter()
    .find_map(|(m, s)| {
        Some(StoredStats {
            keys: (m, s),
            mean: get(m)?,
            std: get(s)?,
        })
    })
}

/// `values` as the 1×C×1×1 tensor `forward` subtracts or divides by.
pub(super) fn channel_tensor(
    values: &[f32],
    channels: i64,
    what: &str,
    device: Device,
) -> Result<Tensor, ModelError> {
    if values.len() as i64 != channels {
        return Err(ModelError::BadInput(format!(
            "{what} has {} value(s) but the model takes {channels} input channel(s)",
            values.len()
        )));
    }
    Ok(Tensor::f_from_slice(values)?
        .f_view([1, channels, 1, 1])?
        .f_to_device(device)?)
}

/// A stored statistic checked to broadcast per channel (C, C×1×1 or 1×C×1×1) and
/// reshaped to 1×C×1×1 (sharing the state variable's storage).
pub(super) fn stored_channel_tensor(
    var: &Tensor,
    raw: &RawTensor,
    key: &str,
    channels: i64,
) -> Result<Tensor, ModelError> {
    let c = channels as usize;
    let fits = [vec![c], vec![c, 1, 1], vec![1, c, 1, 1]].contains(&raw.shape);
    if !fits {
        return Err(ModelError::BadInput(format!(
            "the checkpoint's `{key}` has shape {:?}; as a per-channel statistic of the model's {channels} input channel(s) it must be [{c}], [{c}, 1, 1] or [1, {c}, 1, 1] (use --normalize none|cifar10|... to ignore it)",
            raw.shape
        )));
    }
    Ok(var.f_view([1, channels, 1, 1])?)
}

/// The stored tensor as a float state variable's initial value.
pub(super) fn stored_value(raw: &RawTensor, device: Device) -> Result<Tensor, ModelError> {
    Ok(to_tensor(raw)?
        .f_to_kind(Kind::Float)?
        .f_to_device(device)?)
}

/// What `choice` applies: Some((mean, std)) as 1×C×1×1, or None for raw pixels.
pub(super) fn resolve(
    choice: &NormalizeChoice,
    stored: Option<(&StoredStats, &Tensor, &Tensor)>,
    dataset: Option<(&[f32], &[f32], &str)>,
    channels: i64,
    device: Device,
) -> Result<(NormSource, Option<(Tensor, Tensor)>), ModelError> {
    let from_values = |m: &[f32], s: &[f32], what: &str| -> Result<_, ModelError> {
        if s.iter().any(|v| *v <= 0.0) {
            return Err(ModelError::BadInput(format!(
                "{what}: every std must be positive"
            )));
        }
        Ok(Some((
            channel_tensor(m, channels, what, device)?,
            channel_tensor(s, channels, what, device)?,
        )))
    };
    Ok(match choice {
        NormalizeChoice::Auto => match (stored, dataset) {
            (Some((st, mean, std)), _) => (
                NormSource::Checkpoint(st.keys.0.into(), st.keys.1.into()),
                Some((
                    stored_channel_tensor(mean, st.mean, st.keys.0, channels)?,
                    stored_channel_tensor(std, st.std, st.keys.1, channels)?,
                )),
            ),
            (None, Some((m, s, name))) => (
                NormSource::Dataset(name.to_string()),
                from_values(m, s, &format!("dataset `{name}`"))?,
            ),
            (None, None) => return Err(ModelError::BadInput("no normalisation given".into())),
        },
        // Per-image statistics are computed in `forward` (see `per_image`).
        NormalizeChoice::None | NormalizeChoice::PerImage => (NormSource::Flag, None),
        NormalizeChoice::Named(name) => {
            let (m, s) = NormalizeChoice::named_stats(name);
            (
                NormSource::Flag,
                from_values(&m, &s, &format!("--normalize {name}"))?,
            )
        }
        NormalizeChoice::Custom { mean, std } => (
            NormSource::Flag,
            from_values(mean, std, &format!("--normalize {}", choice.text()))?,
        ),
    })
}

/// `NormalizeChoice::PerImage` on an N×C×H×W batch.
pub(super) fn per_image(x: &Tensor) -> Tensor {
    let size = x.size();
    let n: i64 = size[1..].iter().product();
    let dims: &[i64] = &[1, 2, 3];
    let mean = x.mean_dim(Some(dims), true, None::<Kind>);
    let std = x.std_dim(Some(dims), true, true);
    (x - mean) / std.clamp_min(1.0 / (n as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_round_trip() {
        for text in [
            "auto",
            "none",
            "per-image",
            "cifar10",
            "cifar100",
            "imagenet",
            "mnist",
            "0.5,0.25,0.125/1,2,0.5",
        ] {
            let c = NormalizeChoice::parse(text).unwrap();
            assert_eq!(NormalizeChoice::parse(&c.text()).unwrap(), c, "{text}");
        }
        assert_eq!(
            NormalizeChoice::parse("0.1/0.3").unwrap(),
            NormalizeChoice::Custom {
                mean: vec![0.1],
                std: vec![0.3]
            }
        );
        for bad in ["cifar", "0.5,0.5/0.2", "a,b,c/1,1,1", "0.5/0", "0.5/-1", ""] {
            assert!(NormalizeChoice::parse(bad).is_err(), "{bad}");
        }
    }
}
