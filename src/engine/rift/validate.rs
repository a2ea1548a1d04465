//! Checks that every dataset a pipeline will read fits the model, before the first stage:
//! a mismatch found after MRC, fine-tuning and the α sweep (the OOD stage reads its data
//! last) would waste all of that compute and, unchecked, panic inside libtorch.
use crate::engine::data::{DatasetKind, ImageSet};
use crate::engine::models::{Model, ModelError};

/// A dataset (and the role it plays) that does not fit the model.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error(
        "the {role} dataset {dataset} ({c}×{h}×{w} images) does not fit the model: {source}{hint}"
    )]
    Shape {
        role: &'static str,
        dataset: &'static str,
        c: usize,
        h: usize,
        w: usize,
        // Boxed: a ModelError is large and this error travels through every start.
        source: Box<ModelError>,
        hint: String,
    },
    #[error("the {role} dataset {dataset} has {classes} classes but the model predicts {model_classes}{hint}")]
    Classes {
        role: &'static str,
        dataset: &'static str,
        classes: usize,
        model_classes: i64,
        hint: String,
    },
}

/// The datasets a pipeline reads: the test split (loaded: its geometry is known for every
/// kind, image folders included), the train split of the same kind (fine-tuning), and the
/// corrupted OOD set if one is configured. The train split of an image folder is not
/// loaded here; the folder loader requires one image size per split and fine-tuning
/// checks it when it loads the split.
pub struct PipelineData<'a> {
    pub kind: DatasetKind,
    pub test: &'a ImageSet,
    pub ood: Option<DatasetKind>,
}

/// Checks each dataset of `data` against `model`'s input geometry and class count; the
/// error names the dataset, its role and what the model expects.
pub fn datasets_fit(model: &Model, data: &PipelineData) -> Result<(), FitError> {
    let test = data.test;
    let test_shape = (test.channels, test.height, test.width);
    fits(model, "test", data.kind, test_shape, test.num_classes, "")?;
    if let (Some(shape), Some(classes)) = (data.kind.image_shape(), data.kind.num_classes()) {
        fits(model, "training", data.kind, shape, classes, "")?;
    }
    if let Some(ood) = data.ood {
        if let (Some(shape), Some(classes)) = (ood.image_shape(), ood.num_classes()) {
            let hint = match data.kind.corrupted() {
                Some(matching) if matching != ood => format!(
                    "; for a model of {} use --ood-dataset {} (or leave it out)",
                    data.kind.name(),
                    matching.name()
                ),
                _ => String::new(),
            };
            fits(model, "OOD", ood, shape, classes, &hint)?;
        }
    }
    Ok(())
}

fn fits(
    model: &Model,
    role: &'static str,
    kind: DatasetKind,
    (c, h, w): (usize, usize, usize),
    classes: usize,
    hint: &str,
) -> Result<(), FitError> {
    model
        .check_input(&[1, c as i64, h as i64, w as i64])
        .map_err(|source| FitError::Shape {
            role,
            dataset: kind.name(),
            c,
            h,
            w,
            source: Box::new(source),
            hint: hint.to_string(),
        })?;
    if classes as i64 > model.spec.num_classes {
        return Err(FitError::Classes {
            role,
            dataset: kind.name(),
            classes,
            model_classes: model.spec.num_classes,
            hint: hint.to_string(),
        });
    }
    Ok(())
}
