//! The nonlinearity a family lets the user choose (a leaf: the architecture names and the
//! RaWideResNet's configuration both speak of it).
use tch::Tensor;

/// The nonlinearity of the DM families and the RaWideResNet (every other family is ReLU
/// by construction).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    /// Swish, x·σ(x) (robustbench's `Swish` module computes the same function).
    Silu,
}

impl Activation {
    pub fn parse(s: &str) -> Result<Activation, String> {
        match s.to_ascii_lowercase().as_str() {
            "relu" => Ok(Activation::Relu),
            "silu" | "swish" => Ok(Activation::Silu),
            _ => Err(format!(
                "unknown activation `{s}`; expected relu or silu (swish)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Silu => "silu",
        }
    }

    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Relu => x.relu(),
            Activation::Silu => x.silu(),
        }
    }
}
