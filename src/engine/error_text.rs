//! An error and its causes as the one paragraph rift shows people (the command line's
//! `error:` line, the explorer's status bar).

/// The error and its causes joined by ": ", skipping causes whose text an outer message
/// already includes (error types that embed their source would otherwise repeat it), and
/// libtorch's C++ backtraces (the first lines say it all).
pub fn paragraph(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    for cause in std::iter::successors(Some(e), |c| c.source()) {
        let mut part = cause.to_string();
        if let Some(i) = part.find("\nException raised from") {
            part.truncate(i);
        }
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {path}: {source}")]
    struct Outer {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn embedded_causes_are_not_repeated() {
        let e = Outer {
            path: "a.pth".into(),
            source: std::io::Error::other("gone"),
        };
        assert_eq!(paragraph(&e), "cannot read a.pth: gone");
        let wrapped = anyhow::Error::new(e).context("loading the model");
        assert_eq!(
            paragraph(wrapped.as_ref()),
            "loading the model: cannot read a.pth: gone"
        );
    }
}
