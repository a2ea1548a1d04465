//! Command-line definitions. Flag names follow the published RiFT code where it has them
//! (`--resume` for the checkpoint, `--layer`, `--lr`), so old command lines read naturally.
pub use crate::cli_flags::{
    parse_fraction, AaBudgetArgs, AttackArgs, AutoAttackArgs, DataArgs, FinalEvalArgs, ModelArgs,
    ReadingArgs, RuntimeArgs, SessionOodArgs,
};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "rift",
    version,
    about = "Robust Critical Fine-Tuning (RiFT) for adversarially trained classifiers, on libtorch"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
// Parsed once per process; boxing the big variants would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// libtorch version, devices (GPU names), threads, and where rift looks for data.
    Doctor(DoctorArgs),
    /// Detected architecture and the modules of a checkpoint.
    Inspect(InspectArgs),
    /// Clean and PGD-robust accuracy of a checkpoint on a test set.
    Eval(EvalArgs),
    /// Logits of a checkpoint on a .npy batch (the fidelity check against PyTorch).
    Predict(PredictArgs),
    /// Module robust criticality of every module (SPEC.md §1).
    Mrc(MrcArgs),
    /// Combine the shards of `rift mrc --shard I/N --session DIR` into DIR/mrc.yaml.
    Merge(MergeArgs),
    /// Fine-tune only the chosen module(s) (SPEC.md §2).
    Finetune(FinetuneArgs),
    /// The whole pipeline into a session: MRC → fine-tune → interpolate → OOD → report.
    Run(RunArgs),
    /// The paper's ablation on your model: RiFT's module against other candidates (the most
    /// critical module, the classifier, every parameter, the K least critical, a random
    /// module, named modules), each fine-tuned and interpolated the same way.
    Compare(CompareArgs),
    /// Re-render report.md and the plots of a session from its session.yaml.
    Report(ReportArgs),
    /// The pipeline on the bundled MNIST demo.
    Demo(DemoArgs),
    /// The interactive explorer: live MRC bars, fine-tuning, the α curve.
    Tui(TuiArgs),
    /// Sweep α between AT and fine-tuned weights and choose α (SPEC.md §3).
    Interpolate(InterpolateArgs),
    /// Accuracy on corrupted test sets (CIFAR-10-C/100-C, Tiny-ImageNet-C).
    Ood(OodArgs),
    /// PGD adversarial training, to make an AT checkpoint.
    TrainAt(TrainAtArgs),
    /// The RobustBench model zoo (robustbench 1.1.1): every entry by its id
    /// DATASET/THREAT/NAME, its architecture, the flags `--zoo` sets, and whether rift
    /// supports it (and why not).
    Zoo(ZooArgs),
}

#[derive(Args, Debug)]
pub struct ZooArgs {
    /// Only this dataset's leaderboards.
    #[arg(long, value_parser = rift::engine::zoo::DATASETS)]
    pub dataset: Option<String>,
    /// Only this threat model's leaderboards.
    #[arg(long, value_parser = rift::engine::zoo::THREATS)]
    pub threat: Option<String>,
    /// Only the entries rift supports.
    #[arg(long)]
    pub supported: bool,
    /// The entries and counts as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    #[arg(long, default_value = "auto")]
    pub device: String,
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    #[arg(long)]
    pub threads: Option<usize>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Write the result as YAML (.yaml/.yml) or JSON (.json).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub attack: AttackArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    #[command(flatten)]
    pub autoattack: AutoAttackArgs,
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the adversarial examples to FILE (.safetensors, or .pt/.pth for torch.load):
    /// `x_adv` (float32 N×C×H×W, pixels in [0, 1], the evaluated points in order) and `y`.
    /// AutoAttack's is the clean image where no attack broke the point, as the reference's;
    /// PGD's is the attack's output for every point.
    #[arg(long, value_name = "FILE")]
    pub save_adv: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// float32 N×C×H×W in [0, 1], or uint8 N×H×W×C.
    #[arg(long, value_name = "FILE.npy")]
    pub input: PathBuf,
    /// float32 N×classes logits.
    #[arg(long, value_name = "FILE.npy")]
    pub output: PathBuf,
    /// Whose normalisation to apply (a checkpoint's own mu/sigma win).
    #[arg(long, default_value = "cifar10")]
    pub dataset: String,
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Args, Debug, Clone)]
pub struct MrcFlags {
    /// Relative weight-perturbation bound ε (‖Δw‖ ≤ ε‖w‖).
    #[arg(long, default_value_t = 0.1)]
    pub epsilon: f64,
    /// Ascent epochs per module (`rift mrc` also takes it as --epochs).
    #[arg(id = "mrc_epochs", long = "mrc-epochs", default_value_t = 10)]
    pub epochs: usize,
    /// Split the adversarial set comes from: auto (as the published code: train for
    /// Tiny-ImageNet, test for every other dataset), test, train, or holdout (a held-out
    /// 10% of the training split, so module choice never looks at test data).
    #[arg(long, default_value = rift::engine::rift::mrc::adv_set::ADV_SPLIT_AS_PUBLISHED)]
    pub adv_split: String,
    /// Use only the first N samples of that split.
    #[arg(long)]
    pub adv_limit: Option<usize>,
    /// Only these modules (comma-separated); default: every Conv/Linear module.
    #[arg(long, value_delimiter = ',')]
    pub modules: Vec<String>,
    /// code (max over epochs, the published code) or paper (Algorithm 1: stop at the first
    /// epoch that reaches the ε-ball).
    #[arg(long, default_value = "code")]
    pub variant: String,
    /// Cache the activations entering each module and run only the rest of the network
    /// (same values, less work).
    #[arg(long)]
    pub fast: bool,
    /// Mini-batch of the ascent (published: 512).
    #[arg(long, default_value_t = 512)]
    pub mrc_batch_size: usize,
    /// Ascent learning rate (published: 1).
    #[arg(long, default_value_t = 1.0)]
    pub mrc_lr: f64,
    /// With --fast: the most memory (MiB) one module's cached activations may take; larger
    /// caches fall back to recomputing that module's prefix (same values, slower).
    #[arg(long, value_name = "MiB")]
    pub cache_budget: Option<f64>,
}

#[derive(Args, Debug)]
pub struct MrcArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub attack: AttackArgs,
    #[command(flatten)]
    pub mrc: MrcFlags,
    /// Same as --mrc-epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// First-order screening (this project's addition, not in the paper): estimate every
    /// module as ε·‖w‖·‖∇w L_adv‖ from one forward and backward pass over the adversarial
    /// set. Alone it computes no exact MRC and recommends nothing; add --exact-lowest.
    #[arg(long)]
    pub screen: bool,
    /// With --screen: also the loss rise after one step of size ε‖w‖ along the normalised
    /// gradient (`estimate_step`; one extra forward pass per module).
    #[arg(long)]
    pub one_step: bool,
    /// With --screen: exact MRC (as published; --fast honoured) of the K lowest-estimate
    /// modules, lowest first, or of all of them (then Spearman ρ against the estimates).
    #[arg(long, value_name = "K|all", value_parser = rift::engine::rift::mrc::screen::ExactLowest::parse)]
    pub exact_lowest: Option<rift::engine::rift::mrc::screen::ExactLowest>,
    /// Write the adversarial set MRC measures on (`x`: float32 N×C×H×W in [0, 1], `y`:
    /// int64 labels) as .safetensors or .pth, by extension.
    #[arg(long, value_name = "FILE")]
    pub save_adv_set: Option<PathBuf>,
    /// Score only shard I of N of the modules (module k goes to shard k mod N, I from 0)
    /// into DIR/mrc_shards/ of --session; `rift merge DIR` combines the shards.
    #[arg(long, value_name = "I/N", value_parser = rift::engine::rift::mrc::shard::Shard::parse, requires = "session", conflicts_with = "screen")]
    pub shard: Option<rift::engine::rift::mrc::shard::Shard>,
    /// Spread the modules over several devices of this machine, one model copy and thread
    /// each (e.g. cuda:0,cuda:1; `cpu,cpu` works too); results equal a single-device run.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "LIST",
        conflicts_with = "screen"
    )]
    pub devices: Vec<String>,
    /// The session directory a --shard writes into.
    #[arg(long, value_name = "DIR")]
    pub session: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The session directory whose mrc_shards/ the shards wrote.
    pub session: PathBuf,
    /// Also write the merged MRC result as YAML or JSON here.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct FinetuneArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub ft: FinetuneFlags,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Where to write the fine-tuned weights (.safetensors or .pth, by extension).
    #[arg(long, value_name = "FILE")]
    pub save: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct FinetuneFlags {
    /// Module(s) to fine-tune: a name (layer2.1.conv2), a comma-separated list, or
    /// lowest:K for the K lowest-MRC modules of the MRC result (auto = lowest:1).
    #[arg(long, default_value = "auto")]
    pub layer: String,
    /// A saved `rift mrc --output` result, for --layer lowest:K.
    #[arg(long, value_name = "FILE")]
    pub mrc_result: Option<PathBuf>,
    #[arg(long, default_value_t = 0.001)]
    pub lr: f64,
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Epochs at which the learning rate is multiplied by 0.1 (default: half-way).
    #[arg(long, value_delimiter = ',')]
    pub milestones: Vec<usize>,
    /// val (a held-out 10% of the training split) or test (the published code).
    #[arg(long, default_value = "val")]
    pub select_on: String,
    /// Keep BatchNorm running statistics fixed (eval-mode BN while training).
    #[arg(long)]
    pub freeze_bn_stats: bool,
}

#[derive(Args, Debug)]
pub struct InterpolateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// The fine-tuned weights (from `rift finetune --save`).
    #[arg(long, value_name = "FILE")]
    pub finetuned: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub attack: AttackArgs,
    #[command(flatten)]
    pub sweep: SweepFlags,
    #[command(flatten)]
    pub search: SearchFlags,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Write the chosen model (.pth or .safetensors, by extension).
    #[arg(long, value_name = "FILE")]
    pub save_chosen: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// α selection by search (issue 5; not in the paper): subset screen, full-set finalists.
#[derive(Args, Debug, Clone, Default)]
pub struct SearchFlags {
    /// Choose α by search instead of the full grid: screen every α of --alphas on a subset,
    /// evaluate on the full set only α = 0 and the α the rule could still choose, then
    /// apply the same rule to full-set numbers.
    #[arg(long)]
    pub search: bool,
    /// Screen size: a number of samples or a fraction of the evaluated set (default: a
    /// tenth, at least 100, at most what leaves the budget room for α = 0 and two more
    /// completions).
    #[arg(long, value_name = "N|FRACTION", requires = "search")]
    pub search_subset: Option<String>,
    /// Most attack work the search may spend, as a fraction of the full grid's (default
    /// 1/3); with --search.
    #[arg(long, value_name = "FRACTION", requires = "search", value_parser = parse_fraction)]
    pub search_budget: Option<f64>,
}

#[derive(Args, Debug, Clone)]
pub struct SweepFlags {
    /// α grid: start:stop:step or a comma list (α = 0 is always included).
    #[arg(long, default_value = "0:1:0.1")]
    pub alphas: String,
    /// Rounds of midpoints around the current best α.
    #[arg(long, default_value_t = 0)]
    pub refine: usize,
    /// Points of robust accuracy the chosen α may lose against the AT model.
    #[arg(long, default_value_t = 0.1)]
    pub tolerance: f64,
    /// Spread the α points over several devices of this machine, one model copy and thread
    /// each (e.g. cuda:0,cuda:1; `cpu,cpu` works too); results equal a single-device run.
    /// Not with --search, which decides one α at a time.
    #[arg(long = "devices", value_delimiter = ',', value_name = "LIST")]
    pub devices: Vec<String>,
}

#[derive(Args, Debug)]
pub struct OodArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// cifar10-c, cifar100-c or tiny-imagenet-c.
    #[arg(long, default_value = "cifar10-c")]
    pub dataset: String,
    /// The corruption folder (or its parent).
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// Severities: 1-5, 3, or 1,3,5 (default: 1-5 for CIFAR, 1 for Tiny-ImageNet-C as published).
    #[arg(long)]
    pub severities: Option<String>,
    /// The mean printed first: found, published18 or standard15 (all are printed).
    #[arg(long, default_value = "found", value_parser = crate::cli_flags::OOD_HEADLINES)]
    pub ood_headline: String,
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TrainAtArgs {
    /// resnet18, resnet34, resnet50, preactresnet18, wrn-34-10, ...
    #[arg(long)]
    pub arch: String,
    /// ResNet first-stage width (64 as published) or WRN widen factor.
    #[arg(long)]
    pub width: Option<i64>,
    #[arg(long, default_value = "cifar10")]
    pub dataset: String,
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 110)]
    pub epochs: usize,
    #[arg(long, default_value_t = 0.1)]
    pub lr: f64,
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Epochs at which lr ÷ 10 (default: 100/110 and 105/110 of the run).
    #[arg(long, value_delimiter = ',')]
    pub milestones: Vec<usize>,
    #[command(flatten)]
    pub attack: AttackArgs,
    /// Test samples for the per-epoch clean/robust check.
    #[arg(long, default_value_t = 1000)]
    pub eval_limit: usize,
    /// Where to save the model (.safetensors or .pth), after every epoch.
    #[arg(long, value_name = "FILE")]
    pub save: PathBuf,
    /// Continue a run from its saved model (its `.train-state.safetensors` sidecar holds
    /// the epoch and optimizer state).
    #[arg(long = "continue", visible_alias = "resume", value_name = "FILE")]
    pub continue_from: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Write the per-epoch log (loss, train accuracy, test clean/robust accuracy) here.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub attack: AttackArgs,
    #[command(flatten)]
    pub mrc: MrcFlags,
    #[command(flatten)]
    pub ft: FinetuneFlags,
    #[command(flatten)]
    pub sweep: SweepFlags,
    #[command(flatten)]
    pub search: SearchFlags,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// The session directory (created, or continued where it stopped).
    #[arg(long, value_name = "DIR")]
    pub session: PathBuf,
    #[command(flatten)]
    pub ood: SessionOodArgs,
    /// First-order screening of every module (not in the paper), then exact MRC only for
    /// the K lowest-estimate modules (or all); the module choice uses exact values only.
    #[arg(long, value_name = "K|all", value_parser = rift::engine::rift::mrc::screen::ExactLowest::parse)]
    pub screen: Option<rift::engine::rift::mrc::screen::ExactLowest>,
    #[command(flatten)]
    pub final_eval: FinalEvalArgs,
    /// Continue the session but recompute STAGE and every stage after it (baseline, mrc,
    /// finetune, sweep, ood, final-eval), with this command line's settings; needed when
    /// a setting that changes STAGE's result differs from the session's.
    #[arg(long, value_name = "STAGE", value_parser = rift::engine::rift::run_config::SessionStage::parse)]
    pub restart_from: Option<rift::engine::rift::run_config::SessionStage>,
    /// Also write the final session (all settings and results) as YAML or JSON here.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Every flag of `rift run` (but `--layer` and `--screen`: the candidates choose the
    /// modules, and they are ranked by exact MRC).
    #[command(flatten)]
    pub run: RunArgs,
    /// Comma-separated: rift (lowest MRC), highest (most robust-critical), last (the
    /// classifier), all (every parameter: full fine-tuning + interpolation, WiSE-FT),
    /// lowest:K (the K least critical together), random[:SEED] (one module, seeded; default
    /// seed --seed), or module names (a+b: one candidate training both).
    #[arg(long, value_name = "LIST", default_value = rift::engine::rift::compare::DEFAULT_CANDIDATES, value_parser = parse_candidates)]
    pub candidates: Candidates,
    /// Also write the comparison table as CSV here.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Also write the comparison table as a LaTeX tabular here (booktabs).
    #[arg(long, value_name = "FILE")]
    pub latex: Option<PathBuf>,
}

/// `--candidates`, parsed.
#[derive(Clone, Debug)]
pub struct Candidates(pub Vec<rift::engine::rift::compare::Candidate>);

fn parse_candidates(s: &str) -> Result<Candidates, String> {
    rift::engine::rift::compare::Candidate::parse_list(s)
        .map(Candidates)
        .map_err(|e| e.to_string())
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The session directory.
    pub session: PathBuf,
    /// Also write the session (all settings and results) as YAML or JSON here.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Run without the interactive explorer: the pipeline printed, as `rift run` does.
    #[arg(long)]
    pub headless: bool,
    /// Where to write the session (default: sessions/demo).
    #[arg(long, value_name = "DIR", default_value = "sessions/demo")]
    pub session: PathBuf,
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Explorer theme: default, light, high-contrast, colorblind, or a .yaml file.
    #[arg(long)]
    pub theme: Option<String>,
    /// With --headless: also write the final session as YAML or JSON here.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct TuiArgs {
    /// The AT checkpoint (.pth or .safetensors); not with --resume or --follow.
    #[arg(long, value_name = "FILE", required_unless_present_any = ["resume", "follow", "zoo"], conflicts_with_all = ["resume", "follow"])]
    pub checkpoint: Option<PathBuf>,
    // `--arch`, `--width`, `--activation`, `--normalize`: `ModelArgs` less its checkpoint.
    #[command(flatten)]
    pub reading: ReadingArgs,
    /// Reopen a saved session (its session.yaml) without recomputing; its settings are used.
    #[arg(long, value_name = "DIR", conflicts_with = "follow")]
    pub resume: Option<PathBuf>,
    /// Watch a headless `rift run --session DIR` live through its events.jsonl, read-only.
    #[arg(long, value_name = "DIR")]
    pub follow: Option<PathBuf>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub attack: AttackArgs,
    #[command(flatten)]
    pub mrc: MrcFlags,
    #[command(flatten)]
    pub ft: FinetuneFlags,
    #[command(flatten)]
    pub sweep: SweepFlags,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Where `s` saves the session (the same files as `rift run`).
    #[arg(long, value_name = "DIR", default_value = "sessions/tui")]
    pub session: PathBuf,
    /// Exact MRC for the K lowest first-order estimates only (default: all; the explorer
    /// always screens first to order the exact work and preview the bars).
    #[arg(long, value_name = "K|all", value_parser = rift::engine::rift::mrc::screen::ExactLowest::parse)]
    pub screen: Option<rift::engine::rift::mrc::screen::ExactLowest>,
    /// The corrupted test set evaluated after `a` accepts an α.
    #[command(flatten)]
    pub ood: SessionOodArgs,
    /// default, light, high-contrast, colorblind, or a theme .yaml file.
    #[arg(long)]
    pub theme: Option<String>,
    /// What `e` runs (default: standard AutoAttack on the first 1000 test samples).
    #[command(flatten)]
    pub final_eval: FinalEvalArgs,
    /// Continue the session in --session but recompute STAGE and every stage after it, as
    /// `rift run --restart-from`.
    #[arg(long, value_name = "STAGE", value_parser = rift::engine::rift::run_config::SessionStage::parse)]
    pub restart_from: Option<rift::engine::rift::run_config::SessionStage>,
}
