//! Helpers every bench shares (each bench target includes this module; not all use all).
#![allow(dead_code)]

/// The venv's Python (with PyTorch 2.11), as `make` exports it, else its default place.
pub fn python() -> String {
    std::env::var("RIFT_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/rift/torch-2.11.0/bin/python3",
            std::env::var("HOME").unwrap_or_default()
        )
    })
}

/// A size from the environment, else `default`.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
