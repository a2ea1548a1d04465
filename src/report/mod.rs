//! What rift writes for people and programs: structured outputs (YAML or JSON by
//! extension) and sessions, all written atomically.
pub mod markdown;
mod markdown_screen;
mod markdown_search;
pub mod plots;
mod plots_alpha;
mod plots_screen;
pub mod session;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::Write;
use std::path::Path;

/// The report file written into a session directory.
pub const REPORT_FILE: &str = "report.md";

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename,
/// so a reader never sees a half-written file and an interrupted run leaves the old one.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow::anyhow!("cannot write {}: {e}", path.display())
    })
}

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
