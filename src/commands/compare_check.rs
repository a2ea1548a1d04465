//! What `rift compare`'s candidate directories already hold, read before the first stage.
//! A finished candidate's `candidate.yaml`, a candidate's `session.yaml` or its fine-tuned
//! weights that are there but cannot be read stop the comparison with the file named:
//! before, an unreadable `candidate.yaml` made the candidate run again and write over it,
//! and an unreadable session failed the comparison hours in, at that candidate.
use anyhow::{anyhow, Context, Result};
use rift::engine::rift::alpha::chosen_file::check_chosen_files;
use rift::engine::rift::candidate_dir::CandidateDir;
use rift::engine::rift::compare::Candidate;
use rift::engine::rift::finetune::finetuned_file::check_finetuned_file;
use rift::report::session::Session;
use std::path::Path;

/// Checks the directory of every candidate in `candidates` under comparison `dir`.
pub fn check_candidate_dirs(dir: &Path, candidates: &[Candidate]) -> Result<()> {
    for c in candidates {
        let candidate_dir = CandidateDir::of(dir, c);
        let cdir = candidate_dir.path();
        let keep = || {
            format!(
                "rift leaves it as it is rather than run candidate {} over it: move {} away to run the candidate again",
                c.label(),
                cdir.display()
            )
        };
        if let Err(e) = candidate_dir.row() {
            return Err(anyhow!("candidate {}'s result: {e}; {}", c.label(), keep()));
        }
        if Session::path(cdir).exists() {
            let session = Session::load(cdir).with_context(keep)?;
            check_finetuned_file(cdir, &session)?;
            check_chosen_files(cdir, &session)?;
        }
    }
    Ok(())
}
