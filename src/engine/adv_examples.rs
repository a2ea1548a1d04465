//! The evidence an evaluation leaves besides its verdicts (issue 24): the adversarial
//! examples themselves (`rift eval --save-adv FILE`) and the reference AutoAttack's closing
//! check on them (largest perturbation in the threat model's norm, NaNs, pixel range).
//!
//! The saved file holds `x_adv` (float32, N×C×H×W, pixels in [0, 1], the evaluated points
//! in order) and `y` (int64 labels), as `.safetensors` or as a zip `.pt`/`.pth` that
//! `torch.load(f, weights_only=True)` opens as a dict. As in the reference's
//! `run_standard_evaluation`, AutoAttack's `x_adv` is the clean image wherever no attack
//! broke the point; PGD's is the attack's output for every point (the image its verdict
//! was taken on).
use super::batches::images_to_tensor;
use super::checkpoint::{save_by_extension, CheckpointError};
use super::data::ImageSet;
use super::norms::Norm;
use super::tensors::to_raw;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// The reference's closing check, over the adversarial examples an evaluation found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PerturbationCheck {
    /// Adversarial examples checked.
    pub found: usize,
    /// Their largest perturbation from the clean image, in the run's norm.
    pub max_perturbation: f64,
    /// NaN values among their pixels.
    pub nan: u64,
    /// Their pixel range (None before the first example).
    pub max: Option<f64>,
    pub min: Option<f64>,
}

impl PerturbationCheck {
    /// The check over the rows of `adv` (perturbed `x`) that `which` (bool, one per row)
    /// selects.
    pub fn of_batch(
        x: &Tensor,
        adv: &Tensor,
        which: &Tensor,
        norm: Norm,
    ) -> Result<PerturbationCheck, tch::TchError> {
        let rows = which.f_nonzero()?.f_flatten(0, -1)?;
        let found = rows.size()[0] as usize;
        if found == 0 {
            return Ok(PerturbationCheck::default());
        }
        let (x, adv) = (x.f_index_select(0, &rows)?, adv.f_index_select(0, &rows)?);
        let lengths = norm.lengths(&adv.f_sub(&x)?)?;
        let value = |t: Tensor| t.f_to_kind(Kind::Double)?.f_double_value(&[]);
        Ok(PerturbationCheck {
            found,
            max_perturbation: value(lengths.f_nan_to_num(f64::INFINITY, None, None)?.f_max()?)?,
            nan: adv.f_isnan()?.f_sum(Kind::Int64)?.f_int64_value(&[])? as u64,
            max: Some(value(adv.f_nan_to_num(0.0, None, None)?.f_max()?)?),
            min: Some(value(adv.f_nan_to_num(0.0, None, None)?.f_min()?)?),
        })
    }

    /// Both checks together.
    pub fn merge(&mut self, other: &PerturbationCheck) {
        let pick = |a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64| match (a, b) {
            (Some(a), Some(b)) => Some(f(a, b)),
            (a, b) => a.or(b),
        };
        self.found += other.found;
        self.max_perturbation = self.max_perturbation.max(other.max_perturbation);
        self.nan += other.nan;
        self.max = pick(self.max, other.max, f64::max);
        self.min = pick(self.min, other.min, f64::min);
    }

    /// The reference's line, e.g. `max Linf perturbation: 0.03137, nan in tensor: 0, max:
    /// 1.00000, min: 0.00000`, over the examples found (with how many).
    pub fn line(&self, norm: Norm) -> String {
        let range = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.5}"));
        format!(
            "max {} perturbation: {:.5}, nan in tensor: {}, max: {}, min: {} ({} adversarial examples)",
            norm.name(),
            self.max_perturbation,
            self.nan,
            range(self.max),
            range(self.min),
            self.found
        )
    }
}

/// `x_adv` and `y` of the first `n` points of a set, kept on the CPU.
pub struct AdvExamples {
    pub x_adv: Tensor,
    pub y: Tensor,
}

impl AdvExamples {
    /// The clean images of the first `n` points of `set` (what stays where no attack
    /// succeeds).
    pub fn clean(set: &ImageSet, n: usize) -> Result<AdvExamples, tch::TchError> {
        let n = n.min(set.n);
        let per = set.image_len();
        let shape = [
            n as i64,
            set.channels as i64,
            set.height as i64,
            set.width as i64,
        ];
        let (x_adv, y) = images_to_tensor(
            &set.pixels[..n * per],
            &shape,
            &set.labels[..n],
            Device::Cpu,
        )?;
        Ok(AdvExamples { x_adv, y })
    }

    /// Puts the rows of `adv` that `which` selects at the points `idx` name (one per row).
    pub fn put(
        &mut self,
        idx: &[usize],
        adv: &Tensor,
        which: &Tensor,
    ) -> Result<(), tch::TchError> {
        let which = which.f_to_device(Device::Cpu)?;
        let rows = which.f_nonzero()?.f_flatten(0, -1)?;
        if rows.size()[0] == 0 {
            return Ok(());
        }
        let points: Vec<i64> = idx.iter().map(|&i| i as i64).collect();
        let points = Tensor::f_from_slice(&points)?.f_index_select(0, &rows)?;
        let adv = adv
            .f_to_device(Device::Cpu)?
            .f_to_kind(Kind::Float)?
            .f_index_select(0, &rows)?;
        let _ = self.x_adv.f_index_copy_(0, &points, &adv)?;
        Ok(())
    }

    /// Writes `x_adv` and `y` to `path`, the format chosen by its extension.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let raw = |t: &Tensor| {
            to_raw(t).map_err(|e| CheckpointError::Write {
                path: path.to_path_buf(),
                detail: format!("cannot serialise the adversarial examples: {e}"),
            })
        };
        let tensors = [
            ("x_adv".to_string(), raw(&self.x_adv)?),
            ("y".to_string(), raw(&self.y)?),
        ];
        save_by_extension(path, &tensors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_covers_only_the_selected_rows_and_merges() {
        let x = Tensor::zeros([3, 1, 2, 2], (Kind::Float, Device::Cpu));
        let adv = Tensor::from_slice(&[
            0.1f32, 0.0, 0.0, 0.0, // L∞ 0.1
            0.5, 0.0, 0.0, 0.0, // not selected
            0.0, -0.2, 0.0, 0.3, // L∞ 0.3
        ])
        .view([3, 1, 2, 2]);
        let which = Tensor::from_slice(&[true, false, true]);
        let c = PerturbationCheck::of_batch(&x, &adv, &which, Norm::Linf).unwrap();
        assert_eq!(c.found, 2);
        assert!((c.max_perturbation - 0.3).abs() < 1e-6);
        assert_eq!(
            (c.nan, c.max.map(|v| v > 0.29), c.min.map(|v| v < -0.19)),
            (0, Some(true), Some(true))
        );
        let mut all = PerturbationCheck::default();
        all.merge(&c);
        all.merge(&PerturbationCheck::default());
        assert_eq!(all, c);
        assert!(all
            .line(Norm::Linf)
            .starts_with("max Linf perturbation: 0.30000, nan in tensor: 0"));
    }
}
