//! Published files whose keys differ from the network rift builds (a Swin in timm < 0.9's
//! or Microsoft's layout, `swin_config::timm_names`) load through a rename; what rift writes
//! of such a model goes back into the file's own layout, keys in the file's order and the
//! buffers the rename dropped as the file held them, so that the code that made the file
//! (MIMIR's `build_swin_base`, an old timm) loads rift's output strictly. A leaf: it knows
//! each family's rename, nothing of `Model`.
use super::swin_config;
use crate::engine::checkpoint::RawTensor;
use std::borrow::Cow;

/// Where each key of the file comes from when rift writes it back.
#[derive(Clone, Debug)]
enum Source {
    /// The model's key of that name.
    Model(String),
    /// A constant the model does not hold (a Swin's index and mask buffers): the file's.
    Kept(RawTensor),
}

/// A file's layout, to write a model's state back in.
#[derive(Clone, Debug)]
pub struct FileLayout {
    entries: Vec<(String, Source)>,
}

/// A family's rename of a published layout: per key, its name in rift's layout or None for
/// a constant rift does not hold; None when the file is in rift's layout.
type Rename = fn(&[&str]) -> Option<Vec<Option<String>>>;

/// Every family's rename (the first that applies is used).
const RENAMES: [Rename; 1] = [swin_config::timm_names];

impl FileLayout {
    /// `tensors` in rift's layout and the file's layout, or None when they are in rift's
    /// layout already.
    pub fn of(tensors: &[(String, RawTensor)]) -> Option<(Vec<(String, RawTensor)>, FileLayout)> {
        let keys: Vec<&str> = tensors.iter().map(|(k, _)| k.as_str()).collect();
        let names = RENAMES.iter().find_map(|rename| rename(&keys))?;
        let mut ours = Vec::new();
        let mut entries = Vec::new();
        for ((key, t), name) in tensors.iter().zip(names) {
            let source = match name {
                Some(name) => {
                    ours.push((name.clone(), t.clone()));
                    Source::Model(name)
                }
                None => Source::Kept(t.clone()),
            };
            entries.push((key.clone(), source));
        }
        Some((ours, FileLayout { entries }))
    }

    /// `state` (a model's, in rift's layout) in this file's layout. Keys of the file the
    /// model does not hold and the rename kept nothing of (a wrapper's statistics) are left
    /// out, as rift leaves them out of every file it writes.
    pub fn write_back(&self, state: Vec<(String, RawTensor)>) -> Vec<(String, RawTensor)> {
        let mut by_key: std::collections::HashMap<String, RawTensor> = state.into_iter().collect();
        self.entries
            .iter()
            .filter_map(|(key, source)| match source {
                Source::Model(name) => by_key.remove(name).map(|t| (key.clone(), t)),
                Source::Kept(t) => Some((key.clone(), t.clone())),
            })
            .collect()
    }
}

/// `tensors` in rift's layout: renamed where a family's published layout differs, as they
/// are otherwise.
pub fn in_rift_layout(tensors: &[(String, RawTensor)]) -> Cow<'_, [(String, RawTensor)]> {
    match FileLayout::of(tensors) {
        Some((ours, _)) => Cow::Owned(ours),
        None => Cow::Borrowed(tensors),
    }
}
