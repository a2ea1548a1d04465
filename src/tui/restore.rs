//! `rift tui --resume`: every panel rebuilt from a saved `session.yaml`, without
//! recomputing anything. Pure, like `update`.
use super::state::State;
use crate::engine::rift::alpha::interpolate::choose_alpha;
use crate::engine::rift::mrc::results::ModuleEstimate;
use crate::report::session::Session;

pub fn restore(s: &mut State, session: &Session) {
    let m = &session.model;
    // Sessions older than --normalize do not record it.
    let norm = if m.normalization_short.is_empty() {
        String::new()
    } else {
        format!(", {}", m.normalization_short)
    };
    let zoo = session
        .settings
        .zoo
        .as_ref()
        .map(|id| format!(" = {id}"))
        .unwrap_or_default();
    s.model_info = format!(
        "{}{zoo} ({} parameters, {} modules{norm}) on {}",
        m.arch, m.params, m.modules, session.settings.device
    );
    s.device = session.settings.device.clone();
    s.tolerance = session.settings.tolerance;
    if let Some(b) = &session.baseline {
        s.baseline = Some((b.clean_acc, b.robust_acc.unwrap_or(0.0), b.n));
    }
    if let Some(r) = &session.mrc {
        s.adv_set = Some((r.adv_n, r.baseline_loss, r.baseline_acc));
        s.modules = r.modules.clone();
        // Screened sessions: the estimates of exact modules and of estimate-only ones.
        s.estimates = r.estimated_only.clone();
        for m in &r.modules {
            if let Some(estimate) = m.estimate {
                s.estimates.push(ModuleEstimate {
                    name: m.name.clone(),
                    depth: m.depth,
                    kind: m.kind.clone(),
                    shape: m.shape.clone(),
                    params: m.params,
                    estimate,
                    estimate_step: m.estimate_step,
                });
            }
        }
        s.mrc_total = r.modules.len() + r.estimated_only.len();
        s.mrc_done = true;
        s.recommended = (!r.recommended.is_empty()).then(|| r.recommended.clone());
        if let Some(name) = s.recommended.clone() {
            s.select_module(&name);
        }
    }
    s.ood_at = session
        .ood_at
        .as_ref()
        .map_or(Vec::new(), |r| r.corruptions.clone());
    restore_candidate(s, session);
    s.unsaved = false;
    s.status = format!(
        "resumed session {} (saved {})",
        session.name, session.updated
    );
}

/// The panels of one candidate (fine-tuning, α curve, accepted α, its OOD and
/// AutoAttack numbers) from its session, replacing the previous candidate's entirely.
pub fn restore_candidate(s: &mut State, session: &Session) {
    s.ft_layers.clear();
    s.ft_losses.clear();
    s.ft_stride = 1;
    s.ft_iters = 0;
    s.ft_epoch_starts.clear();
    s.ft_epochs.clear();
    s.ft_epoch = 0;
    s.ft_done = false;
    s.sweep.clear();
    s.best_alpha = None;
    s.aa = Default::default();
    if let Some(f) = &session.finetune {
        s.ft_layers = f.layers.clone();
        for &l in &f.iter_losses {
            s.push_loss(l);
        }
        // Every epoch runs the same batches, so the losses split evenly into epochs.
        let epochs = f.epochs_log.len().max(1);
        s.ft_epoch_starts = (0..f.epochs_log.len())
            .map(|e| e * f.iter_losses.len() / epochs)
            .collect();
        s.ft_epochs = f.epochs_log.clone();
        s.ft_total_epochs = f.epochs;
        s.ft_epoch = f.epochs_log.len().saturating_sub(1);
        s.ft_lr = f.epochs_log.last().map_or(f.lr, |e| e.lr);
        s.lr = f.lr;
        s.ft_done = true;
    }
    if let Some(i) = &session.interpolation {
        s.sweep = i.points.clone();
        s.tolerance = i.tolerance;
        s.best_alpha = (!s.sweep.is_empty()).then(|| choose_alpha(&s.sweep, i.tolerance));
    }
    s.accepted_alpha = session.chosen.as_ref().map(|c| c.alpha);
    s.ood_chosen = session
        .ood_chosen
        .as_ref()
        .map_or(Vec::new(), |r| r.corruptions.clone());
    s.alpha_cursor = s.accepted_alpha.or(s.best_alpha);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed example session: every panel comes back without a job.
    #[test]
    fn the_example_session_restores_every_panel() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions/example-demo");
        let session = Session::load(&dir).expect("example session");
        let mut s = State::new(1.0, 0.0, 0, vec!["default".into()]);
        restore(&mut s, &session);
        let mrc = session.mrc.as_ref().expect("mrc");
        assert_eq!(s.modules.len(), mrc.modules.len());
        assert!(s.mrc_done);
        assert_eq!(s.recommended.as_deref(), Some(mrc.recommended.as_str()));
        assert_eq!(
            s.selected_module().map(|m| m.name.as_str()),
            Some(mrc.recommended.as_str())
        );
        let ft = session.finetune.as_ref().expect("finetune");
        assert_eq!(s.ft_layers, ft.layers);
        assert_eq!(s.ft_epochs, ft.epochs_log);
        assert!(s.ft_done && !s.ft_losses.is_empty());
        // The chart's epoch boundaries: one per logged epoch, evenly through the losses.
        assert_eq!(s.ft_iters, ft.iter_losses.len());
        let per_epoch = ft.iter_losses.len() / ft.epochs_log.len();
        let starts: Vec<usize> = (0..ft.epochs_log.len()).map(|e| e * per_epoch).collect();
        assert_eq!(s.ft_epoch_starts, starts);
        let interp = session.interpolation.as_ref().expect("interpolation");
        assert_eq!(s.sweep, interp.points);
        assert_eq!(s.accepted_alpha, session.chosen.as_ref().map(|c| c.alpha));
        assert_eq!(s.alpha_cursor, s.accepted_alpha);
        assert!(s.best_alpha.is_some());
        assert!(s.baseline.is_some() && s.adv_set.is_some());
        assert!(!s.busy && !s.unsaved && s.job.is_none());
    }
}
