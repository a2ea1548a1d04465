//! The worker's session bookkeeping: a new session from the setup, the fine-tuned
//! weights of a resumed one, and the α refinement grid.
use super::worker::JobSetup;
use crate::engine::checkpoint::RawTensor;
use crate::engine::models::Model;
use crate::engine::rift::interpolate::Endpoints;
use crate::report::session::Session;
use anyhow::{Context, Result};

/// The midpoints between `around` and its neighbours in `alphas` (sorted), not already there.
pub fn refine_alphas(alphas: &[f64], around: f64) -> Vec<f64> {
    let Some(i) = alphas.iter().position(|a| (a - around).abs() < 1e-9) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if i > 0 {
        out.push((alphas[i - 1] + around) / 2.0);
    }
    if i + 1 < alphas.len() {
        out.push((alphas[i + 1] + around) / 2.0);
    }
    out.retain(|a| !alphas.iter().any(|b| (a - b).abs() < 1e-6));
    out
}

/// A model's full state, as checkpoints and `Model::state` hold it.
pub(super) type StateDict = Vec<(String, RawTensor)>;

/// The fine-tuned weights a saved session names, as interpolation endpoints.
pub(super) fn reload_finetuned(
    session: &Session,
    dir: &std::path::Path,
    model: &Model,
) -> Result<Option<(StateDict, Endpoints)>> {
    let Some(file) = &session.finetuned_weights else {
        return Ok(None);
    };
    let path = dir.join(file);
    let ckpt = crate::engine::checkpoint::load_checkpoint(&path).with_context(|| {
        format!(
            "cannot reload the session's fine-tuned weights {}",
            path.display()
        )
    })?;
    let ends = Endpoints::new(model, &ckpt.tensors).with_context(|| {
        format!(
            "the fine-tuned weights {} do not match the model",
            path.display()
        )
    })?;
    Ok(Some((ckpt.tensors, ends)))
}

pub(super) fn new_session(setup: &JobSetup, model: &Model) -> Session {
    Session::new(&setup.session_dir, setup.settings.clone(), model)
}

#[cfg(test)]
mod tests {
    use super::refine_alphas;

    #[test]
    fn refinement_midpoints() {
        assert_eq!(refine_alphas(&[0.0, 0.5, 1.0], 0.5), vec![0.25, 0.75]);
        assert_eq!(refine_alphas(&[0.0, 0.5, 1.0], 0.0), vec![0.25]);
        assert!(refine_alphas(&[0.0, 1.0], 0.3).is_empty());
    }
}
