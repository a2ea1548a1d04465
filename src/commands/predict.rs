use super::{load_model, runtime};
use crate::cli::PredictArgs;
use anyhow::{bail, Context, Result};
use rift::engine::data::{read_npy, write_npy_f32, DatasetKind, NpyDType};
use tch::{Kind, Tensor};

/// Reads the input batch as N×C×H×W floats in [0, 1]: float32 N×C×H×W as is, uint8
/// N×H×W×C (the layout images are stored in) divided by 255 and made channel-first.
fn read_input(path: &std::path::Path) -> Result<Tensor> {
    let arr = read_npy(path)?;
    let shape: Vec<i64> = arr.shape.iter().map(|&d| d as i64).collect();
    if shape.len() != 4 {
        bail!("{}: expected a 4-dimensional batch (float32 N×C×H×W in [0, 1] or uint8 N×H×W×C), got shape {:?}", path.display(), arr.shape);
    }
    match arr.dtype {
        NpyDType::F32 => Ok(Tensor::f_from_data_size(&arr.data, &shape, Kind::Float)?),
        NpyDType::U8 => Ok(Tensor::f_from_data_size(&arr.data, &shape, Kind::Uint8)?
            .f_permute([0, 3, 1, 2])?
            .f_to_kind(Kind::Float)?
            .f_div_scalar(255.0)?),
        other => bail!(
            "{}: expected float32 N×C×H×W in [0, 1] or uint8 N×H×W×C, got dtype {}",
            path.display(),
            other.descr()
        ),
    }
}

pub fn predict(args: &PredictArgs) -> Result<()> {
    let rt = runtime(&args.runtime)?;
    let kind = DatasetKind::parse(&args.dataset)?;
    let (_ckpt, model) = load_model(&args.model, kind, rt.device, rt.compute)?;
    let x = read_input(&args.input)?;
    model.check_input(&x.size()).with_context(|| {
        format!(
            "{} does not fit {}",
            args.input.display(),
            args.model.checkpoint().display()
        )
    })?;
    let n = x.size()[0];
    let mut chunks = Vec::new();
    tch::no_grad(|| -> Result<()> {
        let bs = args.batch_size.max(1) as i64;
        let mut i = 0;
        while i < n {
            let len = bs.min(n - i);
            let xb = x.f_narrow(0, i, len)?.f_to_device(rt.device)?;
            chunks.push(model.forward(&xb, false).f_to_device(tch::Device::Cpu)?);
            i += len;
        }
        Ok(())
    })?;
    let logits = if chunks.is_empty() {
        Tensor::f_zeros([0, model.spec.num_classes], (Kind::Float, tch::Device::Cpu))?
    } else {
        Tensor::f_cat(&chunks, 0)?.f_contiguous()?
    };
    let shape: Vec<usize> = logits.size().iter().map(|&d| d as usize).collect();
    let values: Vec<f32> = Vec::<f32>::try_from(logits.f_flatten(0, -1)?)?;
    write_npy_f32(&args.output, &shape, &values)?;
    eprintln!(
        "wrote {} logits ({}×{}) to {}",
        model.spec.name(),
        shape[0],
        shape[1],
        args.output.display()
    );
    eprintln!("normalization: {}", model.normalization.describe());
    Ok(())
}
