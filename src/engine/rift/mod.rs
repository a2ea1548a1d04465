//! The RiFT method (SPEC.md §1–§3): module robust criticality, fine-tuning of one module,
//! interpolation, OOD evaluation, and adversarial training to make AT models.
pub mod results;
