//! The RiFT method (SPEC.md §1–§3): module robust criticality, fine-tuning of one module,
//! interpolation, OOD evaluation, and adversarial training to make AT models.
pub mod adv_set;
pub mod alpha_search;
pub mod alpha_stats;
pub mod baseline;
pub mod compare;
pub mod events;
pub mod final_eval;
pub mod final_records;
pub mod final_stats;
pub mod finetune;
pub mod finetuned_file;
pub mod interpolate;
pub mod mrc;
pub mod multi_device;
pub mod ood;
pub mod ood_dir;
pub mod optim;
pub mod partial;
pub mod pipeline;
pub mod results;
pub mod scoring;
pub mod screen;
pub mod shard;
pub mod sweep_devices;
pub mod train_at;
pub mod validate;
