//! What rift writes for people and programs: structured outputs (YAML or JSON by
//! extension) and sessions, all written atomically.
mod compare_table;
pub mod markdown;
mod markdown_final;
mod markdown_screen;
mod markdown_search;
mod markdown_text;
mod plot_style;
pub mod plots;
mod plots_alpha;
mod plots_compare;
mod plots_screen;
/// Sessions are the engine pipeline's state; re-exported where reports read them.
pub use crate::engine::session;

use crate::engine::rift::compare::{CompareResult, COMPARE_FILE};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::Path;

/// The report file written into a session directory.
pub const REPORT_FILE: &str = "report.md";

pub use crate::engine::files::atomic_write;
pub use compare_table::{best_within_tolerance, compare_csv, compare_latex, compare_text};

/// YAML for `.yaml`/`.yml`, JSON for `.json`.
pub fn write_structured<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let text = match ext.as_str() {
        "yaml" | "yml" => serde_yaml::to_string(value)?,
        "json" => serde_json::to_string_pretty(value)? + "\n",
        _ => bail!("cannot write {}: the output format is chosen by extension, expected .yaml, .yml or .json", path.display()),
    };
    Ok(atomic_write(path, text.as_bytes())?)
}

/// Writes `report.md` and the figures (`mrc`, `mrc_screen`, `finetune`, `alpha` as PNG and
/// SVG, for the stages that have run) into the session directory `dir`.
pub fn render_report(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        bail!(
            "{} is not a session directory (expected a directory holding {})",
            dir.display(),
            session::SESSION_FILE
        );
    }
    let session = session::Session::load(dir).with_context(|| {
        format!(
            "cannot render the report of session {}: expected a readable {}",
            dir.display(),
            session::SESSION_FILE
        )
    })?;
    let mut text = markdown::render_markdown(&session);
    let compared = read_compare(dir)?;
    if let Some(r) = &compared {
        text.push('\n');
        text.push_str(&compare_table::compare_markdown(r));
    }
    atomic_write(&dir.join(REPORT_FILE), text.as_bytes())
        .with_context(|| format!("cannot write the report of session {}", dir.display()))?;
    plots::render_all(&session, dir)
        .with_context(|| format!("cannot draw the figures of session {}", dir.display()))?;
    if let Some(r) = &compared {
        plots::render_compare(r, dir)
            .with_context(|| format!("cannot draw the comparison figure in {}", dir.display()))?;
    }
    Ok(())
}

/// `rift compare`'s table when `dir` holds one (a comparison's directory).
pub fn read_compare(dir: &Path) -> Result<Option<CompareResult>> {
    let path = dir.join(COMPARE_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let r = serde_yaml::from_str(&text).with_context(|| {
        format!(
            "{} is not a rift comparison (it does not parse as one)",
            path.display()
        )
    })?;
    Ok(Some(r))
}
