//! Strict loading's comparison of a file's state with a model's: every key present, none
//! extra, every shape equal — and, where not, the difference in words.
use crate::engine::checkpoint::RawTensor;
use std::collections::{HashMap, HashSet};
use tch::Tensor;

/// How many keys of each kind a mismatch names before it counts the rest.
const SHOWN: usize = 12;

/// None when `tensors` fit the model with state `keys` and variables `vars` exactly;
/// otherwise its missing, unexpected and wrongly shaped keys (each list cut at `SHOWN`).
pub fn mismatch(
    keys: &[String],
    vars: &HashMap<String, Tensor>,
    tensors: &[(String, RawTensor)],
) -> Option<String> {
    let given: HashSet<&str> = tensors.iter().map(|(k, _)| k.as_str()).collect();
    let missing: Vec<String> = keys
        .iter()
        .filter(|k| !given.contains(k.as_str()))
        .cloned()
        .collect();
    let unexpected: Vec<String> = tensors
        .iter()
        .filter(|(k, _)| !vars.contains_key(k))
        .map(|(k, _)| k.clone())
        .collect();
    let wrong_shape: Vec<String> = tensors
        .iter()
        .filter_map(|(k, t)| {
            let want: Vec<usize> = vars.get(k)?.size().iter().map(|&d| d as usize).collect();
            (want != t.shape).then(|| format!("{k} (file {:?}, model {:?})", t.shape, want))
        })
        .collect();
    let parts: Vec<String> = [
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("wrongly shaped keys", wrong_shape),
    ]
    .into_iter()
    .filter(|(_, items)| !items.is_empty())
    .map(|(what, items)| {
        let n = items.len();
        let more = if n > SHOWN {
            format!(", … ({} more)", n - SHOWN)
        } else {
            String::new()
        };
        let shown: Vec<String> = items.into_iter().take(SHOWN).collect();
        format!("{n} {what}: {}{more}", shown.join(", "))
    })
    .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}
