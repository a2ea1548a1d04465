//! The explorer's worker driven without a terminal: a `JobSetup` with tiny settings for
//! any checkpoint and dataset (tests/tui_jobs.rs on the demo model, tests/zoo_stages.rs
//! on a DM WideResNet).
use rift::engine::attack::PgdConfig;
use rift::engine::checkpoint::load_checkpoint;
use rift::engine::data::DatasetKind;
use rift::engine::models::{Activation, Model, ModelChoice};
use rift::engine::rift::alpha::interpolate::SweepConfig;
use rift::engine::rift::events::{Event, Stage};
use rift::engine::rift::finetune::FinetuneConfig;
use rift::engine::rift::mrc::screen::ExactLowest;
use rift::engine::rift::mrc::MrcConfig;
use rift::engine::rift::pipeline::PipelineSetup;
use rift::engine::rift::run_config::{
    DataConfig, FinetunePlan, ModelConfig, MrcPlan, RunConfig, ScreenPlan,
};
use rift::jobs::{JobEvent, JobSetup};
use rift::report::session::SessionSettings;
use std::path::PathBuf;
use tokio::sync::mpsc::UnboundedReceiver;

/// What a worker test chooses; everything else is tiny and fixed (16 samples, batch 8,
/// one MRC epoch with `--fast`, α 0, 0.5, 1, every module screened then scored exactly).
pub struct JobFixture<'a> {
    pub checkpoint: &'a str,
    pub dataset: &'a str,
    pub data_dir: &'a str,
    pub session: PathBuf,
    pub ft_epochs: usize,
    pub modules: Vec<String>,
    pub attack: PgdConfig,
    /// `--activation` (DM families only).
    pub activation: Option<&'a str>,
}

pub fn job_setup(f: JobFixture) -> JobSetup {
    let kind = DatasetKind::parse(f.dataset).unwrap();
    let checkpoint = PathBuf::from(f.checkpoint);
    let choice = ModelChoice {
        arch: Some("auto".into()),
        activation: f.activation.map(|a| Activation::parse(a).unwrap()),
        ..ModelChoice::default()
    };
    let attack = f.attack;
    let pipeline = PipelineSetup {
        kind,
        data_dir: f.data_dir.into(),
        load: Default::default(),
        attack: attack.clone(),
        eval_limit: Some(16),
        batch_size: 8,
        seed: 0,
        finetune: FinetuneConfig {
            epochs: f.ft_epochs,
            batch_size: 512,
            test_limit: Some(16),
            milestones: vec![1],
            ..FinetuneConfig::default()
        },
        sweep: SweepConfig {
            alphas: vec![0.0, 0.5, 1.0],
            refine: 0,
            tolerance: 0.1,
            attack: attack.clone(),
            limit: Some(16),
            batch_size: 8,
            seed: 0,
        },
        ood: None,
        session_dir: f.session,
        final_eval: None,
    };
    let config = RunConfig {
        model: ModelConfig {
            checkpoint: f.checkpoint.into(),
            arch: "auto".into(),
            width: None,
            normalize: "auto".into(),
            activation: f.activation.map(str::to_string),
            precision: "fp32".into(),
            channels_last: false,
            zoo: None,
        },
        data: DataConfig {
            dataset: f.dataset.into(),
            data_dir: f.data_dir.into(),
            eval_limit: Some(16),
            batch_size: 8,
            seed: 0,
            preprocess: None,
            subset: None,
        },
        attack: attack.clone(),
        mrc: MrcPlan {
            modules: f.modules,
            adv_split: "test".into(),
            adv_limit: Some(16),
            config: MrcConfig {
                epochs: 1,
                batch_size: 8,
                fast: true,
                ..MrcConfig::default()
            },
            screen: Some(ScreenPlan {
                exact: ExactLowest::All,
                one_step: false,
            }),
        },
        finetune: FinetunePlan {
            layer: "auto".into(),
            config: pipeline.finetune.clone(),
        },
        sweep: pipeline.sweep.clone(),
        search: None,
        ood: None,
        final_eval: None,
        preset: None,
    };
    JobSetup {
        load: Box::new(move || {
            let ckpt = load_checkpoint(&checkpoint)?;
            let (mean, std) = kind.mean_std();
            let model = Model::from_checkpoint_with(
                &ckpt,
                &choice,
                tch::Device::Cpu,
                (&mean, &std, kind.name()),
            )?;
            Ok((ckpt, model))
        }),
        pipeline,
        config,
        settings: SessionSettings {
            checkpoint: f.checkpoint.into(),
            zoo: None,
            arch: "auto".into(),
            dataset: f.dataset.into(),
            data_dir: f.data_dir.into(),
            device: "cpu".into(),
            precision: None,
            channels_last: false,
            seed: 0,
            attack,
            eval_limit: Some(16),
            batch_size: 8,
            mrc_variant: "code".into(),
            mrc_epsilon: 0.1,
            mrc_epochs: 1,
            adv_split: "test".into(),
            adv_limit: Some(16),
            mrc_fast: true,
            mrc_screen: None,
            layer: "auto".into(),
            lr: 0.01,
            ft_epochs: f.ft_epochs,
            select_on: "val".into(),
            freeze_bn_stats: false,
            alphas: vec![0.0, 0.5, 1.0],
            refine: 0,
            tolerance: 0.1,
            search: None,
            ood_dir: None,
            normalize: None,
            activation: f.activation.map(str::to_string),
            preset: None,
            ood_headline: None,
        },
        resume: None,
    }
}

/// The tiny PGD of the worker tests on the demo model (ε 0.2, 2 steps of 0.05).
pub fn demo_attack() -> PgdConfig {
    PgdConfig {
        eps: 0.2,
        step: 0.05,
        steps: 2,
        random_start: true,
        restarts: 1,
        norm: Default::default(),
    }
}

/// The modules a job scored exactly, in the order their scores arrived.
pub fn scored_modules(events: &[JobEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            JobEvent::Engine(Event::ModuleScored { score }) => Some(score.name.clone()),
            _ => None,
        })
        .collect()
}

/// The demo model's worker with tiny settings: one fine-tuning epoch, MRC over `linear`.
pub fn demo_job_setup(session: PathBuf) -> JobSetup {
    job_setup(JobFixture {
        checkpoint: super::DEMO_MODEL,
        dataset: "mnist",
        data_dir: "assets/demo",
        session,
        ft_epochs: 1,
        modules: vec!["linear".into()],
        attack: demo_attack(),
        activation: None,
    })
}

/// Every event until the running job ends (its `Finished`, other than the model's
/// loading, `Failed` or `Cancelled`), kept in `seen`; returns the ending event.
pub fn until_end(rx: &mut UnboundedReceiver<JobEvent>, seen: &mut Vec<JobEvent>) -> JobEvent {
    loop {
        let e = rx.blocking_recv().expect("the worker ended early");
        seen.push(e.clone());
        match &e {
            JobEvent::Finished { stage: Stage::Load } => {}
            JobEvent::Finished { .. } | JobEvent::Failed(_) | JobEvent::Cancelled => return e,
            _ => {}
        }
    }
}
