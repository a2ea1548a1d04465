//! The RobustBench model zoo by name: the table `tools/zoo_table.py` generates from
//! robustbench 1.1.1's `model_zoo/{cifar10,cifar100,imagenet}.py` (checked in as
//! `assets/zoo/robustbench-1.1.1.json`), looked up by robustbench's own triple
//! `DATASET/THREAT/NAME`. A leaf: it knows the table and how rift's flags spell an entry,
//! nothing about building models (the commands turn an entry into `--arch`, `--activation`
//! and `--normalize`, then load as usual).
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The generated table, embedded so that `--zoo` needs no file at run time.
const TABLE: &str = include_str!("../../assets/zoo/robustbench-1.1.1.json");

/// The robustbench release the table was generated from.
pub const ROBUSTBENCH_VERSION: &str = "1.1.1";

/// robustbench's default `model_dir` (`load_model(..., model_dir='./models')`).
pub const DEFAULT_MODEL_DIR: &str = "./models";

/// The leaderboards, in robustbench's order.
pub const DATASETS: [&str; 3] = ["cifar10", "cifar100", "imagenet"];
pub const THREATS: [&str; 3] = ["Linf", "L2", "corruptions"];

/// One entry of the zoo: robustbench's constructor and what rift builds for it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ZooEntry {
    pub dataset: String,
    pub threat: String,
    pub name: String,
    /// The `'model'` value of the entry as robustbench writes it.
    pub constructor: String,
    /// The network it builds, every argument named (classes followed to their base).
    pub architecture: String,
    /// rift's family (wrn, boosting-wrn, pssilu-wrn, dm-wrn, meansparse-dm-wrn,
    /// dm-preactresnet, ra-wrn, meansparse-ra-wrn, resnet, resnet-bottleneck, preactresnet,
    /// tv-resnet, tv-resnet-bottleneck, vit, convnext, swin, xcit, alexnet); absent when unsupported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// rift's `--arch` name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_block1: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias_last: Option<bool>,
    pub normalize: ZooNormalize,
    /// ImageNet's evaluation preprocessing (`Res256Crop224`, ...); None: robustbench's
    /// default for the dataset (ToTensor only on CIFAR).
    pub preprocessing: Option<String>,
    /// Why rift cannot build it yet; None: supported.
    pub unsupported: Option<String>,
}

/// The input normalisation of an entry.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ZooNormalize {
    /// `"none"`: raw [0, 1] pixels; `"per-image"`: each image standardised by its own
    /// statistics (Ding2020MMA's forward).
    Raw(String),
    /// Per-channel statistics and where robustbench keeps them: `buffers` (the module's
    /// `mu`/`sigma`, which a file's own values overwrite when loaded), `DM mean/std
    /// arguments`, `NormalizedWideResNet mean/std arguments` (the RaWideResNet's),
    /// `forward: 2x - 1`, `normalize_model`, `normalize_timm_model` (robustbench's
    /// `normalize_model` with the statistics of timm's `default_cfg`: its DeiTs).
    Stats {
        mean: Vec<f64>,
        std: Vec<f64>,
        source: String,
    },
}

/// Why a `--zoo` id cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    #[error("--zoo `{0}` is not DATASET/THREAT/NAME (e.g. cifar10/Linf/Wang2023Better_WRN-70-16, as robustbench names its cache paths); `rift zoo` lists every entry")]
    Malformed(String),
    #[error("--zoo `{id}` is not an entry of robustbench {ROBUSTBENCH_VERSION}'s zoo; the nearest names are {}; `rift zoo` lists every entry", nearest.join(", "))]
    Unknown { id: String, nearest: Vec<String> },
    #[error("--zoo `{id}` ({architecture}) is not supported: {reason}")]
    Unsupported {
        id: String,
        architecture: String,
        reason: String,
    },
    #[error("the zoo table embedded in rift does not parse ({0}); this is a bug in rift's build: regenerate it with `python3 tools/zoo_table.py`")]
    Table(String),
}

#[derive(Deserialize)]
struct Table {
    entries: Vec<ZooEntry>,
}

/// Every entry, in robustbench's order.
pub fn entries() -> Result<&'static [ZooEntry], ZooError> {
    static PARSED: OnceLock<Result<Vec<ZooEntry>, String>> = OnceLock::new();
    PARSED
        .get_or_init(|| {
            serde_json::from_str::<Table>(TABLE)
                .map(|t| t.entries)
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map(|v| v.as_slice())
        .map_err(|e| ZooError::Table(e.clone()))
}

impl ZooEntry {
    /// `DATASET/THREAT/NAME`, robustbench's cache path without `.pt`.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.dataset, self.threat, self.name)
    }

    pub fn is_supported(&self) -> bool {
        self.unsupported.is_none() && self.arch.is_some()
    }

    /// `--normalize` as rift spells it: `none` or `M1,M2,M3/S1,S2,S3`.
    pub fn normalize_flag(&self) -> String {
        match &self.normalize {
            ZooNormalize::Raw(s) if s == "per-image" => s.clone(),
            ZooNormalize::Raw(_) => "none".into(),
            ZooNormalize::Stats { mean, std, .. } => {
                let join = |v: &[f64]| v.iter().map(f64::to_string).collect::<Vec<_>>().join(",");
                format!("{}/{}", join(mean), join(std))
            }
        }
    }

    /// Whether robustbench keeps the statistics as `mu`/`sigma` buffers of the module, so
    /// that a file holding its own `mu`/`sigma` overrides the constructor's values.
    pub fn stats_in_buffers(&self) -> bool {
        matches!(&self.normalize, ZooNormalize::Stats { source, .. } if source == "buffers")
    }

    /// The keys under which a file may hold its own statistics that robustbench's loading
    /// would put in place of the constructor's: `mu`/`sigma` buffers, or the
    /// `normalize_model` wrapper's `normalize.mean`/`normalize.std`.
    pub fn file_stats_keys(&self) -> Option<[&'static str; 2]> {
        match &self.normalize {
            ZooNormalize::Stats { source, .. } if source == "buffers" => Some(["mu", "sigma"]),
            ZooNormalize::Stats { source, .. }
                if source == "normalize_model" || source == "normalize_timm_model" =>
            {
                Some(["normalize.mean", "normalize.std"])
            }
            _ => None,
        }
    }

    /// Whether the family's activation is a flag (the DM networks, the RaWideResNet and
    /// the RobustResNet; every other is ReLU).
    pub fn has_activation_flag(&self) -> bool {
        self.family.as_deref().is_some_and(|f| {
            let f = f.strip_prefix("meansparse-").unwrap_or(f);
            f.starts_with("dm-") || f == "ra-wrn" || f == "robust-resnet"
        })
    }

    /// The flags `--zoo` stands for, as `(flag, value)`; empty when unsupported.
    pub fn flags(&self) -> Vec<(&'static str, String)> {
        let Some(arch) = &self.arch else {
            return vec![];
        };
        let mut out = vec![("--arch", arch.clone())];
        if let (true, Some(act)) = (self.has_activation_flag(), &self.activation) {
            out.push(("--activation", act.clone()));
        }
        out.push(("--normalize", self.normalize_flag()));
        out
    }

    /// The flags as one command-line fragment.
    pub fn flags_text(&self) -> String {
        self.flags()
            .iter()
            .map(|(f, v)| format!("{f} {v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Where robustbench's `load_model` caches the file under `model_dir`.
    pub fn checkpoint_path(&self, model_dir: &Path) -> PathBuf {
        model_dir
            .join(&self.dataset)
            .join(&self.threat)
            .join(format!("{}.pt", self.name))
    }

    /// The error for a missing file: where robustbench would put it and how to get it.
    pub fn missing_file_message(&self, path: &Path, model_dir: &Path) -> String {
        // robustbench builds `pt_models.X(pretrained=True)` from torchvision's own weights
        // and saves no file (its `load_model` returns before looking for one).
        let torchvision = self
            .constructor
            .split("pt_models.")
            .nth(1)
            .and_then(|rest| rest.split('(').next());
        if let (Some(builder), true) = (torchvision, self.constructor.contains("pretrained=True")) {
            return format!(
                "--zoo {id}: no checkpoint at {path} (robustbench's cache path under --model-dir {dir}). rift never downloads, and robustbench keeps no file for this entry: it is torchvision's `{builder}` with its pretrained weights; save them once in Python, `torch.save(torchvision.models.{builder}(weights='IMAGENET1K_V1').state_dict(), '{path}')`, or give the file with --checkpoint",
                id = self.id(),
                path = path.display(),
                dir = model_dir.display(),
            );
        }
        // The XCiTs' constructors name unregistered timm models (see tools/zoo_xcit.py):
        // `load_model` builds the registered one it derives from the entry's name, from
        // timm's download, and saves no file.
        if self.family.as_deref() == Some("xcit") {
            return format!(
                "--zoo {id}: no checkpoint at {path} (robustbench's cache path under --model-dir {dir}). rift never downloads, and robustbench keeps no file for this entry: timm downloads its weights; save them once in Python, `import torch; from robustbench.utils import load_model; torch.save(load_model('{name}', dataset='{dataset}', threat_model='{threat}').state_dict(), '{path}')`, or give the file with --checkpoint",
                id = self.id(),
                path = path.display(),
                dir = model_dir.display(),
                name = self.name,
                dataset = self.dataset,
                threat = self.threat,
            );
        }
        // A timm model robustbench registers (its DeiTs) comes from timm's own download,
        // which `load_model` returns without saving a file.
        let timm = self
            .constructor
            .split("timm.create_model('")
            .nth(1)
            .and_then(|rest| rest.split('\'').next());
        if let (Some(builder), true) = (timm, self.constructor.contains("pretrained=True")) {
            return format!(
                "--zoo {id}: no checkpoint at {path} (robustbench's cache path under --model-dir {dir}). rift never downloads, and robustbench keeps no file for this entry: timm downloads its weights; save them once in Python, `import robustbench, timm, torch; torch.save(timm.create_model('{builder}', pretrained=True).state_dict(), '{path}')`, or give the file with --checkpoint",
                id = self.id(),
                path = path.display(),
                dir = model_dir.display(),
            );
        }
        format!(
            "--zoo {id}: no checkpoint at {path} (robustbench's cache path under --model-dir {dir}). rift never downloads: fetch it once with robustbench in Python, `from robustbench.utils import load_model; load_model(model_name='{name}', dataset='{dataset}', threat_model='{threat}')`, which saves it as ./models/{dataset}/{threat}/{name}.pt under the directory Python runs in; then run rift there or point --model-dir at that `models` directory (or give the file itself with --checkpoint)",
            id = self.id(),
            path = path.display(),
            dir = model_dir.display(),
            name = self.name,
            dataset = self.dataset,
            threat = self.threat,
        )
    }
}

/// The entry of `DATASET/THREAT/NAME`, supported or not (None: unknown or malformed).
fn find(id: &str) -> Result<Option<&'static ZooEntry>, ZooError> {
    let mut parts = id.trim().trim_end_matches(".pt").splitn(3, '/');
    let (Some(d), Some(t), Some(n)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ZooError::Malformed(id.to_string()));
    };
    if d.is_empty() || t.is_empty() || n.is_empty() {
        return Err(ZooError::Malformed(id.to_string()));
    }
    Ok(entries()?
        .iter()
        .find(|e| e.dataset == d && e.threat == t && e.name == n))
}

/// The supported entry of `id`; unknown ids get the three nearest names, unsupported ones
/// their reason.
pub fn lookup(id: &str) -> Result<&'static ZooEntry, ZooError> {
    let Some(entry) = find(id)? else {
        return Err(ZooError::Unknown {
            id: id.to_string(),
            nearest: nearest_ids(id, 3)?,
        });
    };
    match &entry.unsupported {
        Some(reason) => Err(ZooError::Unsupported {
            id: entry.id(),
            architecture: entry.architecture.clone(),
            reason: reason.clone(),
        }),
        None => Ok(entry),
    }
}

/// The `n` ids nearest to `id` by edit distance (ignoring case), nearest first.
pub fn nearest_ids(id: &str, n: usize) -> Result<Vec<String>, ZooError> {
    let wanted = id.to_ascii_lowercase();
    let mut scored: Vec<(usize, String)> = entries()?
        .iter()
        .map(|e| (edit_distance(&wanted, &e.id().to_ascii_lowercase()), e.id()))
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    Ok(scored.into_iter().take(n).map(|(_, id)| id).collect())
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Supported and total entries of one leaderboard.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LeaderboardCount {
    pub dataset: String,
    pub threat: String,
    pub supported: usize,
    pub total: usize,
}

/// Counts per leaderboard of `entries`, in robustbench's order; empty leaderboards left out.
pub fn counts(entries: &[&ZooEntry]) -> Vec<LeaderboardCount> {
    let mut out = Vec::new();
    for d in DATASETS {
        for t in THREATS {
            let board: Vec<_> = entries
                .iter()
                .filter(|e| e.dataset == d && e.threat == t)
                .collect();
            if !board.is_empty() {
                out.push(LeaderboardCount {
                    dataset: d.into(),
                    threat: t.into(),
                    supported: board.iter().filter(|e| e.is_supported()).count(),
                    total: board.len(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_names_are_unique() {
        let all = entries().unwrap();
        assert_eq!(all.len(), 206);
        let mut ids: Vec<String> = all.iter().map(ZooEntry::id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), all.len());
        for e in all.iter().filter(|e| e.is_supported()) {
            assert!(e.classes.is_some() && e.family.is_some(), "{}", e.id());
        }
    }

    #[test]
    fn lookup_finds_suggests_and_refuses() {
        let e = lookup("cifar10/Linf/Wang2023Better_WRN-70-16").unwrap();
        assert_eq!(e.arch.as_deref(), Some("dm-wrn-70-16"));
        assert_eq!(
            e.flags_text(),
            "--arch dm-wrn-70-16 --activation silu --normalize 0.4914,0.4822,0.4465/0.2471,0.2435,0.2616"
        );
        match lookup("cifar10/Linf/Wang2023Better_WRN-70-61") {
            Err(ZooError::Unknown { nearest, .. }) => {
                assert_eq!(nearest[0], "cifar10/Linf/Wang2023Better_WRN-70-16")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            lookup("cifar10/Linf/Sehwag2021Proxy_ResNest152"),
            Err(ZooError::Unsupported { .. })
        ));
        assert!(matches!(
            lookup("Carmon2019Unlabeled"),
            Err(ZooError::Malformed(_))
        ));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
