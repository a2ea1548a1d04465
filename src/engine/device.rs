//! Device choice (`--device auto|cpu|cuda[:N]`) and the facts `rift doctor` prints.
use tch::{Cuda, Device};

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device `{0}`; expected auto, cpu, cuda or cuda:N")]
    Unknown(String),
    #[error("device `{wanted}` requested but {why}")]
    Unavailable { wanted: String, why: String },
}

/// The chosen device and, in words, why it was chosen.
pub fn choose(spec: &str) -> Result<(Device, String), DeviceError> {
    let n = if Cuda::is_available() {
        Cuda::device_count() as usize
    } else {
        0
    };
    match spec.trim().to_ascii_lowercase().as_str() {
        "auto" | "" => {
            if n > 0 {
                Ok((
                    Device::Cuda(0),
                    format!("auto: CUDA is available ({n} GPU(s)), using cuda:0"),
                ))
            } else {
                Ok((
                    Device::Cpu,
                    "auto: CUDA is not available, using the CPU".into(),
                ))
            }
        }
        "cpu" => Ok((Device::Cpu, "requested with --device cpu".into())),
        other => {
            let idx = match other.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => rest
                    .strip_prefix(':')
                    .and_then(|i| i.parse::<usize>().ok())
                    .ok_or_else(|| DeviceError::Unknown(spec.to_string()))?,
                None => return Err(DeviceError::Unknown(spec.to_string())),
            };
            if n == 0 {
                return Err(DeviceError::Unavailable {
                    wanted: spec.to_string(),
                    why: "CUDA is not available to this build of libtorch (no GPU or driver found); use --device cpu".into(),
                });
            }
            if idx >= n {
                return Err(DeviceError::Unavailable {
                    wanted: spec.to_string(),
                    why: format!("only {n} GPU(s) are visible (cuda:0..cuda:{})", n - 1),
                });
            }
            Ok((Device::Cuda(idx), format!("requested with --device {spec}")))
        }
    }
}

pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
    }
}

/// GPU names as the driver reports them (libtorch's C API does not expose them; nvidia-smi
/// does when installed). Empty when unknown.
pub fn gpu_names() -> Vec<String> {
    std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name,memory.total", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(|l| l.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Keeps glibc's allocator from handing tensor-sized blocks back to the kernel after every
/// free (issue 5). By default glibc serves large blocks with fresh `mmap`s and trims the
/// heap eagerly, so every PGD step's activations page-fault anew: a fifth of a CPU
/// evaluation went to the kernel zeroing pages (measured with `perf`). With blocks up to
/// 32 MiB (glibc's ceiling) from the heap and no trimming, freed memory is reused; the
/// process keeps its peak resident size instead of shrinking between batches. Call once,
/// first thing (the binary's `main` does; so does the bench's rift side). A no-op off
/// glibc.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // From <malloc.h>.
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // SAFETY: mallopt only sets allocator parameters; it is called before any thread
        // of ours allocates concurrently, and a rejected value leaves the default.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20);
            mallopt(M_TRIM_THRESHOLD, i32::MAX);
        }
    }
}

/// Threads for intra-op parallelism: `RIFT_THREADS`, else libtorch's default.
pub fn configure_threads(flag: Option<usize>) -> i32 {
    let env = std::env::var("RIFT_THREADS")
        .ok()
        .and_then(|v| v.parse::<i32>().ok());
    if let Some(n) = flag.map(|n| n as i32).or(env).filter(|&n| n > 0) {
        tch::set_num_threads(n);
    }
    tch::get_num_threads()
}
