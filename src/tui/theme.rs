//! Themes: YAML files of named colours (`themes/*.yaml`) mapped to semantic `Style`s. Every
//! colour the explorer draws comes from here. Fields a file leaves out keep the default's
//! value; a broken file yields a message naming the file and the field.
use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

/// The shipped themes, embedded so the binary works from any directory.
pub const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.yaml")),
    ("light", include_str!("../../themes/light.yaml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.yaml"),
    ),
    ("colorblind", include_str!("../../themes/colorblind.yaml")),
];

/// Colour fields of a theme file (foreground unless the name says otherwise).
pub const FIELDS: &[&str] = &[
    "background",
    "text",
    "muted",
    "border",
    "title",
    "selected_bg",
    "recommended",
    "bar",
    "bar_running",
    "clean",
    "robust",
    "baseline",
    "chosen",
    "accepted",
    "tolerance",
    "cursor",
    "error",
    "warning",
    "ok",
    "status_bg",
    "status_fg",
    "gauge",
    "key",
];

#[derive(Clone, Debug, PartialEq)]
pub struct Theme {
    pub name: String,
    pub base: Style,
    pub text: Style,
    pub muted: Style,
    pub border: Style,
    pub title: Style,
    pub selected: Style,
    pub recommended: Style,
    pub bar: Style,
    pub bar_running: Style,
    pub clean: Style,
    pub robust: Style,
    pub baseline: Style,
    pub chosen: Style,
    /// The α the user accepted (apart from the rule's α, `chosen`).
    pub accepted: Style,
    /// The tolerance band's edge in the α panel (robust change = −tolerance).
    pub tolerance: Style,
    pub cursor: Style,
    pub error: Style,
    pub warning: Style,
    pub ok: Style,
    pub status: Style,
    pub gauge: Style,
    pub key: Style,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ThemeError {
    #[error("theme {file}: {message}")]
    Parse { file: String, message: String },
    #[error("theme {file}: field `{field}`: `{value}` is not a colour (use a name like red or light-blue, or #rrggbb)")]
    Colour {
        file: String,
        field: String,
        value: String,
    },
    #[error("theme {file}: unknown field `{field}`; the fields are {}", FIELDS.join(", "))]
    UnknownField { file: String, field: String },
    #[error("cannot read the theme {file}: {message}")]
    Read { file: String, message: String },
    #[error("no theme `{0}`: use default, light, high-contrast, colorblind or a .yaml file")]
    Unknown(String),
}

#[derive(Deserialize)]
struct ThemeFile {
    name: Option<String>,
    #[serde(default)]
    colors: BTreeMap<String, String>,
}

fn colour_table(
    file: &str,
    text: &str,
) -> Result<(Option<String>, BTreeMap<String, Color>), ThemeError> {
    let parsed: ThemeFile = serde_yaml::from_str(text).map_err(|e| ThemeError::Parse {
        file: file.into(),
        message: e.to_string(),
    })?;
    let mut out = BTreeMap::new();
    for (field, value) in parsed.colors {
        if !FIELDS.contains(&field.as_str()) {
            return Err(ThemeError::UnknownField {
                file: file.into(),
                field,
            });
        }
        let c = Color::from_str(value.trim()).map_err(|_| ThemeError::Colour {
            file: file.into(),
            field: field.clone(),
            value: value.clone(),
        })?;
        out.insert(field, c);
    }
    Ok((parsed.name, out))
}

impl Theme {
    /// The embedded default theme.
    pub fn default_theme() -> Theme {
        // The embedded default is tested to parse; this fallback only guards the impossible.
        Theme::parse("default", BUILTIN[0].1)
            .unwrap_or_else(|_| Theme::from_colours("default", &BTreeMap::new()))
    }

    /// A theme from YAML text; `file` names it in errors. Missing fields keep the default's.
    pub fn parse(file: &str, text: &str) -> Result<Theme, ThemeError> {
        let (name, colours) = colour_table(file, text)?;
        let mut merged = if file == "default" {
            BTreeMap::new()
        } else {
            colour_table("default", BUILTIN[0].1)
                .map(|(_, c)| c)
                .unwrap_or_default()
        };
        merged.extend(colours);
        Ok(Theme::from_colours(
            &name.unwrap_or_else(|| file.to_string()),
            &merged,
        ))
    }

    fn from_colours(name: &str, c: &BTreeMap<String, Color>) -> Theme {
        let get = |k: &str| c.get(k).copied().unwrap_or(Color::Reset);
        let bg = get("background");
        let fg = |k: &str| Style::new().fg(get(k)).bg(bg);
        Theme {
            name: name.to_string(),
            base: Style::new().fg(get("text")).bg(bg),
            text: fg("text"),
            muted: fg("muted"),
            border: fg("border"),
            title: fg("title").add_modifier(Modifier::BOLD),
            selected: Style::new().fg(get("text")).bg(get("selected_bg")),
            recommended: fg("recommended").add_modifier(Modifier::BOLD),
            bar: fg("bar"),
            bar_running: fg("bar_running"),
            clean: fg("clean"),
            robust: fg("robust"),
            baseline: fg("baseline"),
            chosen: fg("chosen").add_modifier(Modifier::BOLD),
            accepted: fg("accepted").add_modifier(Modifier::BOLD),
            tolerance: fg("tolerance"),
            cursor: fg("cursor").add_modifier(Modifier::BOLD),
            error: fg("error").add_modifier(Modifier::BOLD),
            warning: fg("warning"),
            ok: fg("ok"),
            status: Style::new().fg(get("status_fg")).bg(get("status_bg")),
            gauge: Style::new().fg(get("gauge")).bg(get("status_bg")),
            key: Style::new()
                .fg(get("key"))
                .bg(get("status_bg"))
                .add_modifier(Modifier::BOLD),
        }
    }

    /// A builtin name, or a path to a YAML file.
    pub fn load(spec: &str) -> Result<Theme, ThemeError> {
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == spec) {
            return Theme::parse(spec, text);
        }
        let path = Path::new(spec);
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") || path.exists() {
            let text = std::fs::read_to_string(path).map_err(|e| ThemeError::Read {
                file: spec.into(),
                message: e.to_string(),
            })?;
            return Theme::parse(spec, &text);
        }
        Err(ThemeError::Unknown(spec.into()))
    }
}

/// The themes `t` cycles through, the requested one first; a broken request falls back to
/// the default and comes with the message to show.
pub fn theme_set(requested: Option<&str>) -> (Vec<Theme>, Option<String>) {
    let mut themes: Vec<Theme> = BUILTIN
        .iter()
        .filter_map(|(n, t)| Theme::parse(n, t).ok())
        .collect();
    if themes.is_empty() {
        themes.push(Theme::default_theme());
    }
    let Some(spec) = requested else {
        return (themes, None);
    };
    match Theme::load(spec) {
        Ok(t) => {
            themes.retain(|x| x.name != t.name);
            themes.insert(0, t);
            (themes, None)
        }
        Err(e) => (themes, Some(format!("{e}; using the default theme"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_themes_parses_and_the_default_is_embedded() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("themes");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let (_, colours) = colour_table(&path.display().to_string(), &text).unwrap();
            assert_eq!(
                colours.len(),
                FIELDS.len(),
                "{} sets every field",
                path.display()
            );
            n += 1;
        }
        assert!(n >= 4);
        let on_disk = std::fs::read_to_string(dir.join("default.yaml")).unwrap();
        assert_eq!(on_disk, BUILTIN[0].1);
    }

    #[test]
    fn broken_files_name_file_and_field() {
        let e = Theme::parse("my.yaml", "colors:\n  robust: blu\n").unwrap_err();
        assert!(
            e.to_string().contains("my.yaml") && e.to_string().contains("`robust`"),
            "{e}"
        );
        let e = Theme::parse("my.yaml", "colors:\n  robustness: red\n").unwrap_err();
        assert!(e.to_string().contains("`robustness`"), "{e}");
        let e = Theme::parse("my.yaml", "colors: [").unwrap_err();
        assert!(e.to_string().contains("my.yaml"), "{e}");
        let (themes, warning) = theme_set(Some("/nonexistent/x.yaml"));
        assert_eq!(themes[0].name, "default");
        assert!(warning.unwrap().contains("/nonexistent/x.yaml"));
    }

    #[test]
    fn partial_files_keep_the_default_colours() {
        let t = Theme::parse("p.yaml", "name: p\ncolors:\n  robust: \"#ff0000\"\n").unwrap();
        let d = Theme::default_theme();
        assert_eq!(t.robust.fg, Some(Color::Rgb(255, 0, 0)));
        assert_eq!(t.clean, d.clean);
        let (themes, w) = theme_set(Some("light"));
        assert!(w.is_none());
        assert_eq!(themes[0].name, "light");
        assert_eq!(themes.len(), BUILTIN.len());
    }
}
