//! What rift writes for people and programs: structured outputs (YAML or JSON by
//! extension) and sessions, all written atomically.
pub mod markdown;
mod markdown_final;
mod markdown_screen;
mod markdown_search;
mod markdown_text;
mod plot_style;
pub mod plots;
mod plots_alpha;
mod plots_screen;
/// Sessions are the engine pipeline's state; re-exported where reports read them.
pub use crate::engine::session;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::Path;

/// The report file written into a session directory.
pub const REPORT_FILE: &str = "report.md";

pub use crate::engine::files::atomic_write;

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
    atomic_write(path, text.as_bytes())
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
    let text = markdown::render_markdown(&session);
    atomic_write(&dir.join(REPORT_FILE), text.as_bytes())
        .with_context(|| format!("cannot write the report of session {}", dir.display()))?;
    plots::render_all(&session, dir)
        .with_context(|| format!("cannot draw the figures of session {}", dir.display()))?;
    Ok(())
}
