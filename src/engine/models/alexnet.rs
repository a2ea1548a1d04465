//! torchvision's AlexNet (`torchvision.models.AlexNet`; robustbench's
//! `alexnet_imagenet_corruptions`, its `TimmAlexNet` in `normalize_timm_model`, the
//! ImageNet-C baseline `imagenet/corruptions/AlexNet`): `features` of five convolutions
//! with ReLU (11×11 stride 4 padding 2 to 64, 5×5 padding 2 to 192, then three 3×3 to
//! 384, 256, 256) with 3×3 stride-2 max-pools after the first, the second and the last,
//! adaptive average pooling to 6×6, and `classifier`: dropout, `classifier.1` (9216 →
//! 4096), ReLU, dropout, `classifier.4` (4096 → 4096), ReLU, `classifier.6`. Keys are
//! torchvision's. Dropout (p = 0.5) acts in training only, as in PyTorch's train mode.
//!
//! For MRC's fast path the five convolutions are one block (`features`, cut before any
//! of them) and the two hidden Linears another (`classifier`, cut before either); the
//! head hands the last hidden layer to `classifier.6` unchanged.
use super::alexnet_config::{features_size, HIDDEN};
use super::arch::ArchSpec;
use super::chain::{Chain, ChainHead, CutBlock, Head, Stem};
use super::layers::{Conv2d, KeyOrder, Linear, ModuleInfo};
use tch::{nn, Tensor};

/// `avgpool`'s output side.
const POOLED: i64 = 6;
/// `features`' output channels.
const CHANNELS: i64 = 256;
const DROPOUT: f64 = 0.5;

/// (`features` index, output channels, kernel, stride, padding, max-pool before it) of
/// each convolution.
const CONVS: [(i64, i64, i64, i64, i64, bool); 5] = [
    (0, 64, 11, 4, 2, false),
    (3, 192, 5, 1, 2, true),
    (6, 384, 3, 1, 1, true),
    (8, 256, 3, 1, 1, false),
    (10, CHANNELS, 3, 1, 1, false),
];

/// The 3×3 stride-2 max-pool after the first, the second and the last convolution.
fn max_pool(x: &Tensor) -> Tensor {
    x.max_pool2d([3, 3], [2, 2], [0, 0], [1, 1], false)
}

/// `features`: the five convolutions, their ReLUs and the max-pools.
struct Features {
    convs: Vec<(Conv2d, bool)>,
}

impl Features {
    /// Convolutions `from..to` with their ReLUs from the input of `from`, each later one
    /// after its max-pool.
    fn span(&self, x: &Tensor, from: usize, to: usize) -> Tensor {
        let mut out = x.shallow_clone();
        for (i, (conv, pool_before)) in self.convs.iter().enumerate().take(to).skip(from) {
            if *pool_before && i > from {
                out = max_pool(&out);
            }
            out = conv.forward(&out).relu();
        }
        out
    }

    /// The position of the convolution `features.LEAF`.
    fn position(&self, leaf: &str) -> Option<usize> {
        self.convs
            .iter()
            .position(|(conv, _)| conv.name.strip_prefix("features.") == Some(leaf))
    }
}

impl CutBlock for Features {
    fn forward(&self, x: &Tensor, _train: bool) -> Tensor {
        max_pool(&self.span(x, 0, self.convs.len()))
    }
    /// The perturbed convolution's input (after its max-pool, if it has one).
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        let at = self.position(leaf)?;
        let input = self.span(x, 0, at);
        Some(vec![if self.convs[at].1 {
            max_pool(&input)
        } else {
            input
        }])
    }
    fn resume(&self, leaf: &str, cache: &[Tensor]) -> Tensor {
        let at = self.position(leaf).unwrap_or(0);
        max_pool(&self.span(&cache[0], at, self.convs.len()))
    }
    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.extend(self.convs.iter().map(|(conv, _)| conv.info()));
    }
    fn out_size(&self, s: i64) -> i64 {
        features_size(s).unwrap_or(0)
    }
}

/// `avgpool` and the two hidden layers of `classifier` (`classifier.1`, `classifier.4`).
struct Hidden {
    fc1: Linear,
    fc4: Linear,
}

impl Hidden {
    /// The pooled, flattened features `classifier.1` takes.
    fn pooled(x: &Tensor) -> Tensor {
        x.adaptive_avg_pool2d([POOLED, POOLED]).flatten(1, -1)
    }

    fn after_fc1(&self, flat: &Tensor, train: bool) -> Tensor {
        self.fc1.forward(&flat.dropout(DROPOUT, train)).relu()
    }

    fn after_fc4(&self, hidden: &Tensor, train: bool) -> Tensor {
        self.fc4.forward(&hidden.dropout(DROPOUT, train)).relu()
    }
}

impl CutBlock for Hidden {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.after_fc4(&self.after_fc1(&Self::pooled(x), train), train)
    }
    fn prepare(&self, x: &Tensor, leaf: &str) -> Option<Vec<Tensor>> {
        match leaf {
            "1" => Some(vec![Self::pooled(x)]),
            "4" => Some(vec![self.after_fc1(&Self::pooled(x), false)]),
            _ => None,
        }
    }
    fn resume(&self, leaf: &str, cache: &[Tensor]) -> Tensor {
        match leaf {
            "1" => self.after_fc4(&self.after_fc1(&cache[0], false), false),
            _ => self.after_fc4(&cache[0], false),
        }
    }
    fn modules(&self, out: &mut Vec<ModuleInfo>) {
        out.push(self.fc1.info());
        out.push(self.fc4.info());
    }
    fn out_size(&self, _s: i64) -> i64 {
        1
    }
}

/// The last hidden layer is `classifier.6`'s input as it is.
struct Unchanged;

impl ChainHead for Unchanged {
    fn features(&self, x: &Tensor) -> Tensor {
        x.shallow_clone()
    }
}

pub struct AlexNet {
    features: Features,
    hidden: Hidden,
    classifier: Linear,
}

impl AlexNet {
    pub fn new(p: &nn::Path, keys: &mut KeyOrder, spec: &ArchSpec) -> Self {
        let mut c_in = spec.in_channels;
        let convs = CONVS
            .iter()
            .map(|&(i, c_out, k, stride, padding, pool_before)| {
                let path = p / "features" / i;
                let conv = Conv2d::with_bias(path, keys, (c_in, c_out, 1), k, stride, padding);
                c_in = c_out;
                (conv, pool_before)
            })
            .collect();
        let classifier = p / "classifier";
        let flat = CHANNELS * POOLED * POOLED;
        let hidden = Hidden {
            fc1: Linear::new(&classifier / 1, keys, flat, HIDDEN),
            fc4: Linear::new(&classifier / 4, keys, HIDDEN, HIDDEN),
        };
        let classifier = Linear::new(&classifier / 6, keys, HIDDEN, spec.num_classes);
        AlexNet {
            features: Features { convs },
            hidden,
            classifier,
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let features = self.features.forward(x, train);
        self.classifier
            .forward(&self.hidden.forward(&features, train))
    }

    /// `classifier.6` takes `HIDDEN` features from any input large enough for `features`.
    pub fn feature_dim(&self, h: i64, w: i64) -> Option<i64> {
        features_size(h)?;
        features_size(w)?;
        Some(HIDDEN)
    }

    pub fn chain(&self) -> Chain<'_> {
        Chain {
            stem: Stem::None,
            blocks: vec![
                ("features".into(), &self.features),
                ("classifier".into(), &self.hidden),
            ],
            head: Head::Custom(&Unchanged),
            classifier: &self.classifier,
        }
    }
}
