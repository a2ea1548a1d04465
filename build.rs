//! Makes `target/release/rift` run as is, from any directory, with no environment variables:
//! - an rpath to the torch libraries torch-sys linked against (found through the python on
//!   PATH with LIBTORCH_USE_PYTORCH=1, or through LIBTORCH), and
//! - on a CUDA build of torch, `--no-as-needed` around `-ltorch_cuda`, because nothing in
//!   the binary references a symbol of libtorch_cuda.so directly and the linker's as-needed
//!   default would drop it: CUDA would then silently report "not available".
use std::path::PathBuf;
use std::process::Command;

/// The torch library folder and torch's version string.
fn torch_lib_dir() -> Option<(PathBuf, String)> {
    if let Ok(dir) = std::env::var("LIBTORCH") {
        let version = std::fs::read_to_string(PathBuf::from(&dir).join("build-version"))
            .unwrap_or_else(|_| "unknown".into());
        return Some((PathBuf::from(dir).join("lib"), version.trim().to_string()));
    }
    let python = std::env::var("PYTHON_SYS_EXECUTABLE").unwrap_or_else(|_| "python3".into());
    let out = Command::new(python)
        .args([
            "-c",
            "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib')); print(torch.__version__)",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let dir = lines.next()?.trim().to_string();
    let version = lines.next().unwrap_or("unknown").trim().to_string();
    Some((PathBuf::from(dir), version))
}

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_USE_PYTORCH");
    println!("cargo:rerun-if-env-changed=PYTHON_SYS_EXECUTABLE");
    println!("cargo:rerun-if-changed=build.rs");
    let Some((lib, version)) = torch_lib_dir() else {
        println!("cargo:warning=rift: could not locate the torch libraries; the binary will need LD_LIBRARY_PATH");
        println!("cargo:rustc-env=RIFT_TORCH_VERSION=unknown");
        return;
    };
    println!("cargo:rustc-env=RIFT_TORCH_VERSION={version}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-env=RIFT_TORCH_LIB_DIR={}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-search=native={}", lib.display());
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
