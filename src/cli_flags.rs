//! Flag groups that several commands flatten (`#[command(flatten)]`): the model, how it
//! is read and run, the data, the attack. Kept apart from `cli.rs`, which only assembles
//! the commands; this file imports nothing from it.
use clap::Args;
use rift::engine::data::preprocess::Preprocess;
use rift::engine::data::{LoadOptions, Subset};
use std::path::PathBuf;

/// The preset names `--preset` accepts (what each fills in: `preset.rs`).
pub const PRESETS: [&str; 1] = ["published"];

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Checkpoint: torch.save .pth (zip or legacy format) or .safetensors. Optional with
    /// --zoo (then MODEL_DIR/DATASET/THREAT/NAME.pt, robustbench's cache path).
    #[arg(
        long,
        visible_alias = "resume",
        value_name = "FILE",
        required_unless_present = "zoo"
    )]
    pub checkpoint: Option<PathBuf>,
    #[command(flatten)]
    pub reading: ReadingArgs,
}

/// How to read a checkpoint beyond its keys: the architecture and what no state dict
/// records (shared by every command that loads a model, and by the explorer, whose
/// `--checkpoint` is optional).
#[derive(Args, Debug, Clone)]
pub struct ReadingArgs {
    /// auto (infer from the checkpoint) or a family name (resnet18, wrn-34-10, dm-wrn-70-16, vit-b16-224, convnext-base, swin-b-p4-w7-224, xcit-s12-p16, …; README "Models" lists every family, `rift inspect` prints a file's).
    #[arg(long, default_value = "auto")]
    pub arch: String,
    /// First-stage width of a ResNet (64 as published) or WRN widen factor, with --arch.
    #[arg(long)]
    pub width: Option<i64>,
    /// relu or silu (Swish): the activation of a DM WideResNet/PreActResNet, which the
    /// checkpoint does not record (default: silu, the zoo's). An error on other families.
    #[arg(long, value_name = "relu|silu")]
    pub activation: Option<String>,
    /// The model's input normalisation: auto (the checkpoint's mu/sigma or mean/std when
    /// present, else the dataset's statistics), none (raw [0, 1] pixels), cifar10,
    /// cifar100, imagenet, mnist, per-image (each image by its own mean and std, as
    /// Ding2020MMA), or per-channel MEANS/STDS (0.4914,0.4822,0.4465/0.2023,0.1994,0.2010).
    #[arg(
        long,
        default_value = "auto",
        value_name = "auto|none|per-image|NAME|M1,M2,M3/S1,S2,S3"
    )]
    pub normalize: String,
    /// A RobustBench model by its id DATASET/THREAT/NAME (e.g.
    /// cifar10/Linf/Wang2023Better_WRN-70-16; `rift zoo` lists them): sets --arch,
    /// --activation and --normalize exactly as robustbench 1.1.1 builds it.
    #[arg(long, value_name = "DATASET/THREAT/NAME")]
    pub zoo: Option<String>,
    /// With --zoo and no --checkpoint: the directory robustbench's `load_model` saves to
    /// (its `model_dir`); the file read is DIR/DATASET/THREAT/NAME.pt.
    #[arg(long, value_name = "DIR", default_value = rift::engine::zoo::DEFAULT_MODEL_DIR, requires = "zoo")]
    pub model_dir: PathBuf,
}

impl ModelArgs {
    /// The checkpoint file: given, or filled in from --zoo before any command runs
    /// (`commands::zoo::apply_zoo`); clap refuses a command line with neither.
    pub fn checkpoint(&self) -> &std::path::Path {
        self.checkpoint
            .as_deref()
            .unwrap_or_else(|| std::path::Path::new(""))
    }
}

#[derive(Args, Debug, Clone)]
pub struct RuntimeArgs {
    /// auto (cuda:0 when available, else cpu), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Seed for every random choice (random starts, shuffles).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Intra-op CPU threads (default: libtorch's choice, or RIFT_THREADS).
    #[arg(long)]
    pub threads: Option<usize>,
    /// fp32 (the default: the published numbers) or bf16: convolutions and linear layers in
    /// bfloat16, the rest fp32, like PyTorch's autocast. Faster where the hardware has bf16
    /// units (recent GPUs, AVX-512-BF16/AMX CPUs); accuracies move by a few tenths of a point.
    #[arg(long, default_value = "fp32")]
    pub precision: String,
    /// Lay images, activations and convolution weights out channels-last (NHWC): often
    /// faster, same values up to float summation order.
    #[arg(long)]
    pub channels_last: bool,
    /// published: every quirk of the reference code at once (PGD step 2/225, fine-tuning
    /// epoch chosen on the test set, adversarial split per dataset, the 18-corruption OOD
    /// mean as the headline); flags given explicitly still win.
    #[arg(long, value_parser = PRESETS)]
    pub preset: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// cifar10, cifar100, cifar10-c, cifar100-c, tiny-imagenet, tiny-imagenet-c, mnist,
    /// imagefolder, imagenet.
    #[arg(long, default_value = "cifar10")]
    pub dataset: String,
    /// Where the dataset lives (the published code expects ./data).
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// Evaluate only the first N test samples (ImageNet: only those are decoded; with
    /// --subset robustbench, the first N of its list).
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// ImageNet and image folders: the evaluation preprocessing, as robustbench names it:
    /// Res256Crop224, Crop288, Res224, BicubicRes256Crop224, or none (any case); computed as
    /// torchvision on PIL images. With --zoo imagenet/..., the entry's.
    #[arg(long, value_name = "NAME", value_parser = parse_preprocess)]
    pub preprocess: Option<Preprocess>,
    /// ImageNet: robustbench evaluates on robustbench's fixed 5,000 validation images, in
    /// its order, as its leaderboard does.
    #[arg(long, value_name = "NAME", value_parser = parse_subset)]
    pub subset: Option<Subset>,
}

fn parse_preprocess(s: &str) -> Result<Preprocess, String> {
    Preprocess::parse(s)
}

fn parse_subset(s: &str) -> Result<Subset, String> {
    Subset::parse(s)
}

impl DataArgs {
    /// How the data is read: the preprocessing, the subset, and `--limit` (applied while
    /// loading ImageNet's evaluation split, so only those images are decoded).
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            preprocess: self.preprocess,
            subset: self.subset.unwrap_or_default(),
            limit: self.limit,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct AttackArgs {
    /// pgd, or none for clean accuracy only (`rift eval` also takes autoattack, or a
    /// comma-separated list of apgd-ce, apgd-dlr, apgd-t, fab-t, square, pgd).
    #[arg(long, default_value = "pgd")]
    pub attack: String,
    /// The threat model: linf (the paper's) or l2 (PGD-L2 as torchattacks' PGDL2, e.g.
    /// RobustBench's CIFAR-10 L2 with --eps 0.5 --step 0.1; AutoAttack-L2 as the reference's
    /// L2 version). L1 is refused: AutoAttack's L1 version needs APGD-L1 and Square-L1,
    /// which rift does not implement.
    #[arg(long, default_value = "linf", value_parser = rift::engine::attack::Norm::parse)]
    pub norm: rift::engine::attack::Norm,
    /// Radius in the norm's units: L∞ in [0, 1] pixel units (fractions like 8/255 are
    /// accepted); L2 over the whole image in [0, 1] pixels (no default: give it with --norm l2).
    #[arg(long, default_value = "8/255", value_parser = parse_fraction)]
    pub eps: f64,
    /// PGD step size (the published code's 2/225 is a typo; pass it explicitly if wanted).
    #[arg(long, default_value = "2/255", value_parser = parse_fraction)]
    pub step: f64,
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Restarts; a sample is robust only if it survives all of them.
    #[arg(long, default_value_t = 1)]
    pub restarts: usize,
    /// Start PGD at the clean input instead of a uniform random point of the ε-ball.
    #[arg(long)]
    pub no_random_start: bool,
}

/// `rift eval --attack autoattack|LIST`: AutoAttack's settings (published defaults) and
/// its resumable state file.
#[derive(Args, Debug, Clone)]
pub struct AutoAttackArgs {
    /// Record progress in FILE (JSON) after every batch; rerunning the same command with
    /// the same FILE resumes an interrupted AutoAttack.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    #[command(flatten)]
    pub budget: AaBudgetArgs,
}

/// AutoAttack's budgets (published defaults), for `rift eval --attack` and `rift run
/// --final-eval`.
#[derive(Args, Debug, Clone)]
pub struct AaBudgetArgs {
    /// AutoAttack's version (with `autoattack`): standard (APGD-CE, APGD-T, FAB-T, Square),
    /// plus (APGD-CE and APGD-DLR with 5 restarts, untargeted FAB with 5 restarts, Square,
    /// then APGD-T and FAB-T, as the reference's `plus`), or rand (APGD-CE and APGD-DLR with
    /// EOT over 20 gradient samples, for randomised defences).
    #[arg(long = "version", value_name = "standard|plus|rand", default_value = "standard", value_parser = rift::engine::autoattack::AaVersion::parse)]
    pub version: rift::engine::autoattack::AaVersion,
    /// APGD iterations per run.
    #[arg(long, default_value_t = 100)]
    pub apgd_iters: usize,
    /// Restarts of APGD-CE and APGD-DLR (default 1; 5 with --version plus).
    #[arg(long)]
    pub apgd_restarts: Option<usize>,
    /// Target classes of APGD-T and FAB-T.
    #[arg(long, default_value_t = 9)]
    pub targets: usize,
    /// FAB iterations per run (per target for FAB-T).
    #[arg(long, default_value_t = 100)]
    pub fab_iters: usize,
    /// Square's query budget.
    #[arg(long, default_value_t = 5000)]
    pub square_queries: usize,
}

/// `rift run --final-eval` (issue 12): AutoAttack of the AT and the chosen model after α
/// is chosen, on the same test samples.
#[derive(Args, Debug, Clone)]
pub struct FinalEvalArgs {
    /// After α is chosen, evaluate the AT and the chosen model with AutoAttack on the same
    /// test samples, at the run's --eps and --seed: `autoattack` (the standard version) or
    /// a comma-separated list of apgd-ce, apgd-dlr, apgd-t, fab-t, square, pgd.
    #[arg(long, value_name = "autoattack|LIST", value_parser = parse_attack_list)]
    pub final_eval: Option<AttackList>,
    /// Test samples of the final evaluation: the first N (default 1000, or the whole test
    /// split when smaller).
    #[arg(long, value_name = "N", requires = "final_eval", value_parser = parse_positive)]
    pub final_limit: Option<usize>,
    #[command(flatten)]
    pub budget: AaBudgetArgs,
}

/// AutoAttack's attacks, in order, as `--final-eval` names them.
#[derive(Clone, Debug, PartialEq)]
pub struct AttackList(pub Vec<rift::engine::autoattack::AttackKind>);

/// `autoattack` or a comma-separated list of attack names (unknown names are usage errors).
pub fn parse_attack_list(s: &str) -> Result<AttackList, String> {
    rift::engine::autoattack::AttackKind::parse_list(s)
        .map(AttackList)
        .map_err(|e| e.to_string())
}

/// A count of at least 1.
pub fn parse_positive(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a whole number of at least 1")),
    }
}

/// Parses `0.03`, `8/255` or `8 / 255`.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let bad = || format!("`{s}` is not a number or a fraction like 8/255");
    let v = match s.split_once('/') {
        Some((a, b)) => {
            let a: f64 = a.trim().parse().map_err(|_| bad())?;
            let b: f64 = b.trim().parse().map_err(|_| bad())?;
            if b == 0.0 {
                return Err(bad());
            }
            a / b
        }
        None => s.trim().parse().map_err(|_| bad())?,
    };
    if !v.is_finite() || v < 0.0 {
        return Err(format!("`{s}` must be a finite, non-negative number"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions() {
        assert!((parse_fraction("8/255").unwrap() - 8.0 / 255.0).abs() < 1e-15);
        assert_eq!(parse_fraction("0.5").unwrap(), 0.5);
        assert!(parse_fraction("1/0").is_err());
        assert!(parse_fraction("-1").is_err());
        assert!(parse_fraction("x").is_err());
    }
}

/// The corrupted test set a session evaluates the chosen model on (`rift run` and the
/// explorer share these flags).
#[derive(Args, Debug, Clone, Default)]
pub struct SessionOodArgs {
    /// Corrupted test set for OOD: cifar10-c, cifar100-c, tiny-imagenet-c or mnist-c
    /// (default: the dataset's own -C set, when found; MNIST's only when given).
    #[arg(long)]
    pub ood_dataset: Option<String>,
    /// Where the corrupted set lives (default: --data-dir).
    #[arg(long, value_name = "DIR")]
    pub ood_dir: Option<PathBuf>,
    /// Severities: 1-5, 3, or 1,3,5 (default: 1-5 for CIFAR, 1 for Tiny-ImageNet-C as
    /// published; MNIST-C has only 1).
    #[arg(long)]
    pub severities: Option<String>,
    /// The OOD number summaries lead with: found (the mean over the corruptions present),
    /// published18 (the published code's 18) or standard15; all three are always reported.
    #[arg(long, default_value = "found", value_parser = OOD_HEADLINES)]
    pub ood_headline: String,
}

/// `--ood-headline` values.
pub const OOD_HEADLINES: [&str; 3] = ["found", "published18", "standard15"];
