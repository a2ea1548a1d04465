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

/// The targets a bench checked, kept so that its last line and exit status say whether
/// every one was met: a missed target or one that could not be measured (a missing tool,
/// an unreadable /proc) fails the bench, so it is never visible only mid-output.
pub struct Scorecard {
    bench: &'static str,
    met: Vec<String>,
    missed: Vec<String>,
    unmeasured: Vec<String>,
}

impl Scorecard {
    pub fn new(bench: &'static str) -> Self {
        Scorecard {
            bench,
            met: Vec::new(),
            missed: Vec::new(),
            unmeasured: Vec::new(),
        }
    }

    /// Records whether the target `name` was met; returns the word to print beside it.
    pub fn target(&mut self, name: &str, met: bool) -> &'static str {
        if met {
            self.met.push(name.to_string());
            "met"
        } else {
            self.missed.push(name.to_string());
            "MISSED"
        }
    }

    /// Records (and prints) that the target `name` could not be measured, and why.
    pub fn unmeasured(&mut self, name: &str, why: &str) {
        println!("{name}: NOT MEASURED: {why}");
        self.unmeasured.push(format!("{name} ({why})"));
    }

    /// Prints the summary line and returns the exit status: failure unless every target
    /// was measured and met.
    pub fn finish(self) -> std::process::ExitCode {
        let list = |v: &[String]| {
            if v.is_empty() {
                String::new()
            } else {
                format!(": {}", v.join("; "))
            }
        };
        println!(
            "\nsummary {}: {} met, {} missed{}, {} not measured{}",
            self.bench,
            self.met.len(),
            self.missed.len(),
            list(&self.missed),
            self.unmeasured.len(),
            list(&self.unmeasured),
        );
        if self.missed.is_empty() && self.unmeasured.is_empty() {
            std::process::ExitCode::SUCCESS
        } else {
            std::process::ExitCode::FAILURE
        }
    }
}
