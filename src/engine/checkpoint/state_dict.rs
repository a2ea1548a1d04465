//! Finding the state dict inside an unpickled checkpoint and summarising everything else.

use super::pickle_vm::Value;
use super::tensor::RawTensor;

/// Keys under which training scripts store the model's state dict, in the order tried.
pub const CONTAINER_KEYS: &[&str] = &["net", "state_dict", "model", "model_state_dict", "state"];

/// Prefixes stripped when every key has them (DataParallel, wrapper modules), repeatedly.
pub const STRIP_PREFIXES: &[&str] = &["module.", "model."];

/// The buffers of robustbench's `normalize_model(net, mean, std)` wrapper
/// (`nn.Sequential(normalize=ImageNormalizer(mean, std), model=net)`), beside `model.*`.
pub const NORMALIZE_MODEL_STATS: [&str; 2] = ["normalize.mean", "normalize.std"];

/// Whether the keys are `normalize_model`'s: both statistics, every other key under
/// `model.` (and at least one such key).
fn is_normalize_model(tensors: &[(String, RawTensor)]) -> bool {
    let is_stat = |k: &str| NORMALIZE_MODEL_STATS.contains(&k);
    NORMALIZE_MODEL_STATS
        .iter()
        .all(|s| tensors.iter().any(|(k, _)| k == s))
        && tensors.iter().any(|(k, _)| !is_stat(k))
        && tensors
            .iter()
            .all(|(k, _)| is_stat(k) || (k.starts_with("model.") && k.len() > "model.".len()))
}

/// A state dict found in a checkpoint.
pub struct Found {
    pub tensors: Vec<(String, RawTensor)>,
    pub container_key: Option<String>,
    pub stripped_prefix: Option<String>,
    pub metadata: Vec<(String, String)>,
}

fn key_text(k: &Value) -> Option<String> {
    match k {
        Value::Str(s) => Some(s.clone()),
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

/// Whether `v` is a non-empty dict whose keys are strings and whose values are all tensors.
fn is_tensor_dict(v: &Value) -> bool {
    match v {
        Value::Dict(items) => {
            !items.is_empty()
                && items
                    .iter()
                    .all(|(k, v)| key_text(k).is_some() && matches!(v, Value::Tensor(_)))
        }
        _ => false,
    }
}

fn take_tensors(v: Value) -> Vec<(String, RawTensor)> {
    let mut out: Vec<(String, RawTensor)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    if let Value::Dict(items) = v {
        for (k, v) in items {
            if let (Some(k), Value::Tensor(t)) = (key_text(&k), v) {
                // A repeated key replaces the earlier value in place (Python dict semantics).
                match index.get(&k) {
                    Some(&i) => out[i].1 = t,
                    None => {
                        index.insert(k.clone(), out.len());
                        out.push((k, t));
                    }
                }
            }
        }
    }
    out
}

/// Describes the top-level keys of `root` for an error message.
pub fn describe_keys(root: &Value) -> String {
    match root {
        Value::Dict(items) if items.is_empty() => "none (an empty dict)".into(),
        Value::Dict(items) => {
            let mut s: Vec<String> = items
                .iter()
                .take(20)
                .map(|(k, v)| {
                    format!(
                        "{} ({})",
                        key_text(k).unwrap_or_else(|| summarize(k)),
                        kind(v)
                    )
                })
                .collect();
            if items.len() > 20 {
                s.push(format!("... {} more", items.len() - 20));
            }
            s.join(", ")
        }
        other => format!("none: the file holds a {} rather than a dict", kind(other)),
    }
}

fn kind(v: &Value) -> String {
    match v {
        Value::None => "None".into(),
        Value::Bool(_) => "bool".into(),
        Value::Int(_) => "int".into(),
        Value::Float(_) => "float".into(),
        Value::Str(_) => "str".into(),
        Value::Bytes(_) => "bytes".into(),
        Value::List(_) => "list".into(),
        Value::Tuple(_) => "tuple".into(),
        Value::Dict(d) if is_tensor_dict(v) => format!("dict of {} tensors", d.len()),
        Value::Dict(_) => "dict".into(),
        Value::NdArray { .. } => "numpy array".into(),
        Value::Tensor(_) => "tensor".into(),
        Value::Object { class, .. } => class.clone(),
    }
}

/// The checkpoint under `last` of a `{last, best}` pair (Kireev et al.'s files, which
/// RobustBench's `load_model` reads by taking `last`), with the other keys; `root` back
/// when it is no such pair.
fn take_last(root: Value) -> Result<(Value, Vec<(Value, Value)>), Value> {
    let Value::Dict(mut items) = root else {
        return Err(root);
    };
    let is_pair = |items: &[(Value, Value)]| {
        let has = |name: &str| {
            items
                .iter()
                .any(|(k, _)| key_text(k).as_deref() == Some(name))
        };
        has("last") && has("best")
    };
    let last = is_pair(&items)
        .then(|| {
            items.iter().position(|(k, v)| {
                key_text(k).as_deref() == Some("last") && matches!(v, Value::Dict(_))
            })
        })
        .flatten();
    match last {
        Some(pos) => {
            let (_, v) = items.remove(pos);
            Ok((v, items))
        }
        None => Err(Value::Dict(items)),
    }
}

/// Finds the state dict in `root`; `None` when there is none.
pub fn find_state_dict(root: Value) -> Result<Found, Value> {
    let root =
        match take_last(root) {
            Ok((last, others)) => {
                return match find_state_dict(last) {
                    Ok(mut found) => {
                        found.container_key = Some(match found.container_key {
                            Some(inner) => format!("last.{inner}"),
                            None => "last".into(),
                        });
                        found.metadata.extend(others.iter().map(|(k, v)| {
                            (key_text(k).unwrap_or_else(|| summarize(k)), summarize(v))
                        }));
                        Ok(found)
                    }
                    Err(inner) => {
                        let mut items = others;
                        items.push((Value::Str("last".into()), inner));
                        Err(Value::Dict(items))
                    }
                };
            }
            Err(root) => root,
        };
    let (tensors, container_key, rest) = if is_tensor_dict(&root) {
        (take_tensors(root), None, Vec::new())
    } else {
        let Value::Dict(items) = root else {
            return Err(root);
        };
        let pos = CONTAINER_KEYS
            .iter()
            .find_map(|ck| {
                items
                    .iter()
                    .position(|(k, v)| key_text(k).as_deref() == Some(ck) && is_tensor_dict(v))
            })
            .or_else(|| {
                // Otherwise a single top-level dict of tensors under any other name.
                let cands: Vec<usize> = items
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, v))| is_tensor_dict(v))
                    .map(|(i, _)| i)
                    .collect();
                if cands.len() == 1 {
                    Some(cands[0])
                } else {
                    None
                }
            });
        let Some(pos) = pos else {
            return Err(Value::Dict(items));
        };
        let mut items = items;
        let (k, v) = items.remove(pos);
        (take_tensors(v), key_text(&k), items)
    };
    let mut tensors = tensors;
    // Wrappers stack (DataParallel around a `model` attribute: `module.model.`), so strip
    // until no prefix is common to every key; the stripped text is recorded whole.
    let mut stripped = String::new();
    loop {
        let common = STRIP_PREFIXES.iter().find(|p| {
            tensors
                .iter()
                .all(|(k, _)| k.starts_with(*p) && k.len() > p.len())
        });
        if let Some(p) = common {
            for (k, _) in tensors.iter_mut() {
                k.drain(..p.len());
            }
            stripped.push_str(p);
        } else if is_normalize_model(&tensors) {
            // The network's keys lose `model.`; the statistics keep their own names and
            // are read as the checkpoint's normalisation.
            for (k, _) in tensors.iter_mut() {
                if !NORMALIZE_MODEL_STATS.contains(&k.as_str()) {
                    k.drain(.."model.".len());
                }
            }
            stripped.push_str("model.");
        } else {
            break;
        }
    }
    let stripped_prefix = (!stripped.is_empty()).then_some(stripped);
    let metadata = rest
        .iter()
        .map(|(k, v)| (key_text(k).unwrap_or_else(|| summarize(k)), summarize(v)))
        .collect();
    Ok(Found {
        tensors,
        container_key,
        stripped_prefix,
        metadata,
    })
}

fn py_float(f: f64) -> String {
    if f.is_finite() && f == f.trunc() && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// A short, human-readable summary of a value.
pub fn summarize(v: &Value) -> String {
    truncate(summarize_inner(v, 0), 240)
}

fn summarize_inner(v: &Value, depth: usize) -> String {
    match v {
        Value::None => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => py_float(*f),
        Value::Str(s) => format!("'{}'", truncate(s.clone(), 80)),
        Value::Bytes(b) => format!("<{} bytes>", b.len()),
        Value::Tensor(t) if t.shape.is_empty() => {
            let x = t.to_f32_vec();
            match x.first() {
                Some(x) if t.dtype.is_float() => format!("tensor({x}, {})", t.dtype),
                Some(x) => format!("tensor({x}, {})", t.dtype),
                None => format!("tensor({})", t.dtype),
            }
        }
        Value::Tensor(t) => format!("tensor {} {:?}", t.dtype, t.shape),
        Value::NdArray { dtype, shape, .. } => format!("numpy array {dtype} {shape:?}"),
        Value::List(items) | Value::Tuple(items) if depth < 2 && items.len() <= 8 => {
            let inner: Vec<String> = items
                .iter()
                .map(|x| summarize_inner(x, depth + 1))
                .collect();
            if matches!(v, Value::List(_)) {
                format!("[{}]", inner.join(", "))
            } else {
                format!("({})", inner.join(", "))
            }
        }
        Value::List(items) => format!("<list: {} items>", items.len()),
        Value::Tuple(items) => format!("<tuple: {} items>", items.len()),
        Value::Dict(items) => {
            let has = |k: &str| v.get(k).is_some();
            if has("state") && has("param_groups") {
                let n = match v.get("state") {
                    Some(Value::Dict(s)) => s.len(),
                    _ => 0,
                };
                format!(
                    "<optimizer state: {} entries, state for {n} parameters>",
                    items.len()
                )
            } else if is_tensor_dict(v) {
                format!("<state dict: {} tensors>", items.len())
            } else {
                format!("<dict: {} entries>", items.len())
            }
        }
        Value::Object { class, state } => {
            if let Some(np) = class.strip_prefix("numpy.") {
                if matches!(**state, Value::Float(_) | Value::Int(_) | Value::Bool(_)) {
                    return format!("{} (numpy {np})", summarize_inner(state, depth + 1));
                }
            }
            match (class.as_str(), &**state) {
                ("argparse.Namespace", Value::Dict(items)) => {
                    let inner: Vec<String> = items
                        .iter()
                        .map(|(k, x)| {
                            format!(
                                "{}={}",
                                key_text(k).unwrap_or_default(),
                                summarize_inner(x, depth + 1)
                            )
                        })
                        .collect();
                    format!("argparse.Namespace({})", inner.join(", "))
                }
                ("torch.device", Value::Str(s)) => format!("device('{s}')"),
                ("torch.dtype", Value::Str(s)) => s.clone(),
                (_, Value::None) => format!("<{class}>"),
                _ => format!("{class}({})", summarize_inner(state, depth + 1)),
            }
        }
    }
}
