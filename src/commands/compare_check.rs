//! What `rift compare`'s candidate directories already hold, read before the first stage.
//! A finished candidate's `candidate.yaml`, a candidate's `session.yaml` or its fine-tuned
//! weights that are there but cannot be read stop the comparison with the file named:
//! before, an unreadable `candidate.yaml` made the candidate run again and write over it,
//! and an unreadable session failed the comparison hours in, at that candidate.
use anyhow::{anyhow, Context, Result};
use rift::engine::rift::alpha::chosen_file::check_chosen_files;
use rift::engine::rift::compare::{Candidate, CandidateRow, CANDIDATES_DIR, CANDIDATE_FILE};
use rift::engine::rift::finetune::finetuned_file::check_finetuned_file;
use rift::report::session::Session;
use std::path::Path;

/// Checks the directory of every candidate in `candidates` under comparison `dir`.
pub fn check_candidate_dirs(dir: &Path, candidates: &[Candidate]) -> Result<()> {
    for c in candidates {
        let cdir = dir.join(CANDIDATES_DIR).join(c.dir_name());
        let keep = || {
            format!(
                "rift leaves it as it is rather than run candidate {} over it: move {} away to run the candidate again",
                c.label(),
                cdir.display()
            )
        };
        let row = cdir.join(CANDIDATE_FILE);
        if row.exists() {
            let parsed = std::fs::read_to_string(&row)
                .map_err(anyhow::Error::from)
                .and_then(|t| Ok(serde_yaml::from_str::<CandidateRow>(&t)?));
            if let Err(e) = parsed {
                return Err(anyhow!(
                    "cannot read candidate {}'s result {}: {e}; {}",
                    c.label(),
                    row.display(),
                    keep()
                ));
            }
        }
        if Session::path(&cdir).exists() {
            let session = Session::load(&cdir).with_context(keep)?;
            check_finetuned_file(&cdir, &session)?;
            check_chosen_files(&cdir, &session)?;
        }
    }
    Ok(())
}
