use crate::cli::DoctorArgs;
use anyhow::Result;
use rift::engine::data::DatasetKind;
use rift::engine::device;

/// Prints what rift will compute with, and where it will look for data.
pub fn doctor(args: &DoctorArgs) -> Result<()> {
    println!("rift {}", env!("CARGO_PKG_VERSION"));
    println!("libtorch      {} (tch 0.24.0)", rift::engine::TORCH_VERSION);
    let cuda = tch::Cuda::is_available();
    let n = if cuda { tch::Cuda::device_count() } else { 0 };
    println!(
        "CUDA          {}",
        if cuda {
            format!(
                "available, {n} device(s), cuDNN {}",
                tch::Cuda::cudnn_is_available()
            )
        } else {
            "not available".into()
        }
    );
    let names = device::gpu_names();
    for i in 0..n as usize {
        let name = names
            .get(i)
            .cloned()
            .unwrap_or_else(|| "(name unknown: nvidia-smi not found)".into());
        println!("  cuda:{i}      {name}");
    }
    let threads = device::configure_threads(args.threads);
    println!("CPU threads   {threads} (intra-op; set with --threads or RIFT_THREADS)");
    match device::choose(&args.device) {
        Ok((d, why)) => println!("device        {} — {why}", device::device_name(d)),
        Err(e) => println!("device        error: {e}"),
    }
    let dir = &args.data_dir;
    let abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    println!(
        "data dir      {} ({})",
        abs.display(),
        if dir.is_dir() { "exists" } else { "missing" }
    );
    for (name, candidates) in KNOWN_PLACES {
        let found = candidates.iter().map(|c| dir.join(c)).find(|p| p.exists());
        let _ = DatasetKind::parse(name)?;
        println!(
            "  {name:<16} {}",
            found.map_or("not found".to_string(), |p| format!(
                "found at {}",
                p.display()
            ))
        );
    }
    Ok(())
}

/// Where each dataset usually sits under the data directory (a quick look, not a load).
const KNOWN_PLACES: &[(&str, &[&str])] = &[
    ("cifar10", &["cifar-10-batches-py", "cifar-10-batches-bin"]),
    ("cifar100", &["cifar-100-python", "cifar-100-binary"]),
    ("cifar10-c", &["CIFAR-10-C"]),
    ("cifar100-c", &["CIFAR-100-C"]),
    ("tiny-imagenet", &["tiny-imagenet-200"]),
    ("tiny-imagenet-c", &["Tiny-ImageNet-C"]),
    ("imagenet", &["imagenet/val", "ILSVRC2012/val", "val"]),
    (
        "mnist",
        &[
            "train-images-idx3-ubyte.gz",
            "train-images-idx3-ubyte",
            "MNIST/raw",
            "mnist",
        ],
    ),
];
