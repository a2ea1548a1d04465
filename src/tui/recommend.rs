//! Whether "lowest MRC" is the recommendation yet. Exact MRC arrives module by module; the
//! lowest value after one module is only the lowest *so far*, so the explorer calls it
//! provisional until every module that gets an exact value (all of them, or the `--screen
//! K` chosen by estimate) has one, or MRC has finished.
use super::state::State;

/// How far the exact values behind the recommendation are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Provisional {
    /// Modules with an exact MRC value.
    pub exact: usize,
    /// Modules that get one in this run.
    pub of: usize,
}

impl State {
    /// `Some` while the recommended module is the lowest of only part of the modules it
    /// will be compared against.
    pub fn provisional(&self) -> Option<Provisional> {
        if self.mrc_done || self.recommended.is_none() {
            return None;
        }
        let exact = self.modules.len();
        // The MRC job's progress counts the modules that get an exact value; before its
        // first report, every screened module is assumed to.
        let of = if self.mrc_total > 0 {
            self.mrc_total
        } else {
            self.estimates.len()
        };
        (exact < of).then_some(Provisional { exact, of })
    }

    /// The line under a recommended module's name in the module panel.
    pub fn recommendation_label(&self) -> String {
        match self.provisional() {
            Some(p) => format!(
                "lowest MRC so far: provisional, {} of {} modules exact",
                p.exact, p.of
            ),
            // A follower cannot fine-tune: no key to offer there.
            None if self.read_only.is_some() => "lowest MRC: recommended".into(),
            None => "lowest MRC: recommended (Enter)".into(),
        }
    }
}
