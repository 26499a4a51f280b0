//! The HDNet hourglass: one network shape for both the normal net (RGB -> normals) and the depth
//! net (RGB | normals | IUV -> depth), exactly the original's layer list.
//!
//! conv1..conv17 are 3x3 convolutions (SAME zero padding, bias) followed by shift-only batch norm
//! with per-image statistics and ReLU; four 2x2 max-poolings go down, four TF1-legacy bilinear x2
//! upsamplings come back, each concatenated [upsampled, skip]; conv18 is a 1x1 convolution with
//! bias and nothing after it.

use burn::module::Param;
use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::cpu_kernels::{batch_norm_relu, conv3x3, max_pool_2x2, upsample_2x};
use crate::layers::conv1x1;
use crate::profile::Stopwatch;

/// TF1 `batch_norm`'s default epsilon.
pub const BN_EPSILON: f64 = 1e-3;
/// conv1..conv17 carry batch norm; conv18 is the output layer.
pub const NUM_CONV_BN: usize = 17;
/// The original channel widths (NUM_CH).
pub const ORIGINAL_WIDTHS: [usize; 5] = [64, 128, 256, 512, 1024];

/// Which of the two networks: it fixes the input/output channels and the TF variable scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetKind {
    /// RGB (white background, 0..255) -> 3 raw normal components.
    Normal,
    /// RGB | unit normals | DensePose IUV (9 channels) -> depth.
    Depth,
}

impl NetKind {
    pub fn tf_scope(self) -> &'static str {
        match self {
            NetKind::Normal => "hourglass_normal_prediction",
            NetKind::Depth => "hourglass_stack_fused_depth_prediction",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NetKind::Normal => "normal_net",
            NetKind::Depth => "depth_net",
        }
    }

    pub fn default_channels(self) -> (usize, usize) {
        match self {
            NetKind::Normal => (3, 3),
            NetKind::Depth => (9, 1),
        }
    }
}

/// Input channels of a depth net that does not use DensePose.
pub const DEPTH_INPUTS_WITHOUT_DENSEPOSE: usize = 6;

/// Shape of one hourglass: input/output channels and the five widths (64..1024 in the original).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourglassConfig {
    pub kind: NetKind,
    pub in_channels: usize,
    pub out_channels: usize,
    pub widths: [usize; 5],
}

impl HourglassConfig {
    /// The standard network of `kind` with base width `w0` (widths w0, 2w0, 4w0, 8w0, 16w0).
    pub fn new(kind: NetKind, w0: usize) -> Self {
        let (in_channels, out_channels) = kind.default_channels();
        Self {
            kind,
            in_channels,
            out_channels,
            widths: [w0, 2 * w0, 4 * w0, 8 * w0, 16 * w0],
        }
    }

    /// The depth net without DensePose: [RGB | normals] (6 channels) -> depth.
    pub fn without_densepose(self) -> Self {
        Self { in_channels: DEPTH_INPUTS_WITHOUT_DENSEPOSE, ..self }
    }

    /// (in, out) channels of conv1..conv17, in order.
    pub fn conv_channels(&self) -> [(usize, usize); NUM_CONV_BN] {
        let [w0, w1, w2, w3, w4] = self.widths;
        [
            (self.in_channels, w0),
            (w0, w0),
            (w0, w0),
            (w0, w1),
            (w1, w2),
            (w2, w3),
            (w3, w4),
            (w4, w4),
            (w4, w3),
            (2 * w3, w3),
            (w3, w2),
            (2 * w2, w2),
            (w2, w1),
            (2 * w1, w1),
            (w1, w0),
            (2 * w0, w0),
            (w0, w0),
        ]
    }

    /// Multiply-adds x 2 of one forward pass on an `h` x `w` image.
    pub fn flops(&self, h: usize, w: usize) -> f64 {
        let sizes = [0, 0, 0, 1, 2, 3, 4, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0];
        let convs: f64 = self
            .conv_channels()
            .iter()
            .zip(sizes)
            .map(|(&(cin, cout), level)| {
                let pixels = (h >> level) * (w >> level);
                2.0 * 9.0 * (cin * cout * pixels) as f64
            })
            .sum();
        convs + 2.0 * (self.widths[0] * self.out_channels * h * w) as f64
    }

    /// A network with random weights (TF's variance-scaling: std sqrt(2.6 / fan_in)), drawn on
    /// the host from `seed` so that the result depends on nothing else (no global generator).
    pub fn init(&self, device: &Device, seed: u64) -> Hourglass {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let blocks = self
            .conv_channels()
            .iter()
            .map(|&(cin, cout)| ConvBnRelu {
                weight: Param::from_tensor(he_normal([cout, cin, 3, 3], &mut rng, device)),
                bias: Param::from_tensor(Tensor::zeros([cout], device)),
                beta: Param::from_tensor(Tensor::zeros([cout], device)),
            })
            .collect();
        let w0 = self.widths[0];
        Hourglass {
            blocks,
            head_weight: Param::from_tensor(he_normal([self.out_channels, w0, 1, 1], &mut rng, device)),
            head_bias: Param::from_tensor(Tensor::zeros([self.out_channels], device)),
        }
    }
}

fn he_normal(shape: [usize; 4], rng: &mut ChaCha8Rng, device: &Device) -> Tensor<4> {
    let fan_in = (shape[1] * shape[2] * shape[3]) as f32;
    let std = (2.6 / fan_in).sqrt();
    let count: usize = shape.iter().product();
    // Box-Muller: two uniforms give a standard normal.
    let values: Vec<f32> = (0..count)
        .map(|_| {
            let (u1, u2): (f32, f32) = (rng.random::<f32>().max(f32::MIN_POSITIVE), rng.random());
            std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        })
        .collect();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// 3x3 convolution + bias, per-image batch norm with shift only, ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    /// [out, in, 3, 3]
    pub weight: Param<Tensor<4>>,
    /// Dead under batch statistics (the mean subtraction cancels it), kept for checkpoint parity.
    pub bias: Param<Tensor<1>>,
    pub beta: Param<Tensor<1>>,
}

impl ConvBnRelu {
    pub fn forward(&self, x: Tensor<4>, watch: &Stopwatch) -> Tensor<4> {
        let c = watch.time("conv3x3", || self.conv(x));
        watch.time("batch_norm+relu", || batch_norm_relu(c, self.beta.val(), BN_EPSILON))
    }

    /// The convolution and bias alone (before batch norm).
    pub fn conv(&self, x: Tensor<4>) -> Tensor<4> {
        conv3x3(x, self.weight.val(), self.bias.val())
    }
}

/// One hourglass network; `blocks[k]` is the original's `conv{k+1}`, the head is `conv18`.
#[derive(Module, Debug)]
pub struct Hourglass {
    pub blocks: Vec<ConvBnRelu>,
    /// [out, w0, 1, 1]
    pub head_weight: Param<Tensor<4>>,
    pub head_bias: Param<Tensor<1>>,
}

impl Hourglass {
    /// NCHW input (height and width divisible by 16) -> NCHW raw output.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_timed(x, &Stopwatch::off())
    }

    /// [`Hourglass::forward`], adding the time of each kind of operation to `watch`.
    pub fn forward_timed(&self, x: Tensor<4>, watch: &Stopwatch) -> Tensor<4> {
        let b = &self.blocks;
        let block = |k: usize, x: Tensor<4>| b[k].forward(x, watch);
        let pool = |x: Tensor<4>| watch.time("max_pool", || max_pool_2x2(x));
        let up = |low: Tensor<4>, skip: Tensor<4>| {
            let low = watch.time("upsample", || upsample_2x(low));
            watch.time("concat", || Tensor::cat(vec![low, skip], 1))
        };
        let c3 = block(2, block(1, block(0, x)));
        let c4 = block(3, pool(c3.clone()));
        let c5 = block(4, pool(c4.clone()));
        let c6 = block(5, pool(c5.clone()));
        let c7 = block(6, pool(c6.clone()));
        let c9 = block(8, block(7, c7));
        let c11 = block(10, block(9, up(c9, c6)));
        let c13 = block(12, block(11, up(c11, c5)));
        let c15 = block(14, block(13, up(c13, c4)));
        let c17 = block(16, block(15, up(c15, c3)));
        watch.time("conv1x1 (head)", || {
            conv1x1(c17, self.head_weight.val(), self.head_bias.val())
        })
    }

    pub fn in_channels(&self) -> usize {
        self.blocks[0].weight.dims()[1]
    }

    /// This network's share of a depth-net input built with all 9 channels [RGB | normals | IUV]:
    /// all of it, or the first 6 for a depth net trained without DensePose.
    pub fn take_inputs(&self, x: Tensor<4>) -> Tensor<4> {
        let c = self.in_channels();
        if x.dims()[1] > c { x.narrow(1, 0, c) } else { x }
    }

    /// The configuration implied by the parameter shapes.
    pub fn config(&self, kind: NetKind) -> HourglassConfig {
        let out = |k: usize| self.blocks[k].weight.dims()[0];
        HourglassConfig {
            kind,
            in_channels: self.in_channels(),
            out_channels: self.head_weight.dims()[0],
            widths: [out(0), out(3), out(4), out(5), out(6)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_depth_net_flops_match_the_measured_78_gflop() {
        let gflop = HourglassConfig::new(NetKind::Depth, 64).flops(256, 256) / 1e9;
        assert!((gflop - 78.0).abs() < 0.5, "{gflop}");
    }

    #[test]
    fn random_network_keeps_spatial_size_and_reports_its_config() {
        let device = Device::flex();
        let config = HourglassConfig::new(NetKind::Depth, 2);
        let net = config.init(&device, 1);
        let x = Tensor::random([2, 9, 32, 48], burn::tensor::Distribution::Default, &device);
        assert_eq!(net.forward(x).dims(), [2, 1, 32, 48]);
        assert_eq!(net.config(NetKind::Depth), config);
    }
}
