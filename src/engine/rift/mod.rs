//! The RiFT method (SPEC.md §1–§3), one folder per stage: `mrc` (the adversarial set,
//! screening and exact module robust criticality, with its partial file, shards and
//! devices), `finetune` (one module), `alpha` (interpolation, sweep and search),
//! `final_eval` (AutoAttack of the AT and chosen models, OOD) and `compare`; around them
//! the pipeline that orders the stages, its events and plan, and adversarial training
//! to make AT models.
pub mod alpha;
pub mod baseline;
pub mod candidate_dir;
pub mod compare;
pub mod events;
pub mod final_eval;
pub mod finetune;
pub mod mrc;
pub mod pipeline;
pub mod run_config;
pub mod stages;
pub mod train_at;
pub mod validate;
