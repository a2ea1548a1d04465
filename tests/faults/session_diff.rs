//! What "the same session" means for the fault suite: every result file of a reference
//! session is present in the other with the same content, wall-clock fields aside.
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Fields that hold wall-clock time or how the runs went, not a result: when, how long,
/// that a session was continued, and that an attack's verdicts were read back from
/// AutoAttack's state file (`resumed`) rather than computed in this process.
fn is_wall_clock(key: &str) -> bool {
    matches!(
        key,
        "seconds" | "created" | "updated" | "continued" | "resumed"
    ) || key.ends_with("_seconds")
}

/// `v` without its wall-clock fields, at any depth.
fn without_wall_clock(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| !is_wall_clock(k))
                .map(|(k, v)| (k, without_wall_clock(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_wall_clock).collect()),
        other => other,
    }
}

/// A YAML or JSON result file as JSON, wall-clock fields removed.
pub fn result_value(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let v: Value = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?
    } else {
        let y: serde_yaml::Value = serde_yaml::from_str(&text)
            .map_err(|e| format!("{} is not YAML: {e}", path.display()))?;
        serde_json::to_value(y).map_err(|e| format!("{}: {e}", path.display()))?
    };
    Ok(without_wall_clock(v))
}

/// The result files under `dir` (YAML, JSON and safetensors; hidden files — the lock, a
/// temporary file — aside), relative to `dir`, sorted.
pub fn result_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                walk(root, &p, out);
            } else if ["yaml", "json", "safetensors"]
                .iter()
                .any(|x| p.extension().is_some_and(|e| e == *x))
            {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Every way `got` differs from `reference` in its results: a file missing or extra, a
/// YAML/JSON file with other values (the first differing path named), weights with other
/// bytes. Empty: the same session, bit for bit.
pub fn differences(reference: &Path, got: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let (want, have) = (result_files(reference), result_files(got));
    for f in want.iter().filter(|f| !have.contains(f)) {
        out.push(format!("{} is missing", f.display()));
    }
    for f in have.iter().filter(|f| !want.contains(f)) {
        out.push(format!("{} is extra", f.display()));
    }
    for f in want.iter().filter(|f| have.contains(f)) {
        let (a, b) = (reference.join(f), got.join(f));
        if f.extension().is_some_and(|e| e == "safetensors") {
            if std::fs::read(&a).ok() != std::fs::read(&b).ok() {
                out.push(format!("{} has other bytes", f.display()));
            }
            continue;
        }
        match (result_value(&a), result_value(&b)) {
            (Ok(x), Ok(y)) if x == y => {}
            (Ok(x), Ok(y)) => out.push(format!(
                "{} differs at {}",
                f.display(),
                first_difference(&x, &y, "")
            )),
            (Err(e), _) | (_, Err(e)) => out.push(e),
        }
    }
    out
}

/// The path of the first value where `a` and `b` differ, with both values.
pub fn first_difference(a: &Value, b: &Value, at: &str) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) if v == w => {}
                    Some(w) => return first_difference(v, w, &format!("{at}.{k}")),
                    None => return format!("{at}.{k} (missing)"),
                }
            }
            format!("{at} (extra keys)")
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                if v != w {
                    return first_difference(v, w, &format!("{at}[{i}]"));
                }
            }
            at.to_string()
        }
        _ => format!("{at}: {a} vs {b}"),
    }
}
