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
/// The resolution level (halvings) at which conv1..conv17 run.
const CONV_LEVELS: [usize; NUM_CONV_BN] = [0, 0, 0, 1, 2, 3, 4, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0];
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
    /// The widest base width hdnet makes (the original's is 64): far beyond any machine's memory,
    /// and small enough that no width arithmetic overflows.
    pub const MAX_WIDTH: usize = 4096;

    /// The standard network of `kind` with base width `w0` (widths w0, 2w0, 4w0, 8w0, 16w0).
    pub fn new(kind: NetKind, w0: usize) -> Self {
        let (in_channels, out_channels) = kind.default_channels();
        Self { kind, in_channels, out_channels, widths: [w0, 2 * w0, 4 * w0, 8 * w0, 16 * w0] }
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
        let convs: f64 = self
            .conv_channels()
            .iter()
            .zip(CONV_LEVELS)
            .map(|(&(cin, cout), level)| 2.0 * 9.0 * (cin * cout) as f64 * ((h >> level) * (w >> level)) as f64)
            .sum();
        convs + 2.0 * (self.widths[0] * self.out_channels) as f64 * (h * w) as f64
    }

    /// Output values of conv1..conv17 for one `h` x `w` image (what a training step keeps).
    pub fn activations(&self, h: usize, w: usize) -> f64 {
        let outputs = self.conv_channels().into_iter().zip(CONV_LEVELS);
        outputs.map(|((_, cout), level)| cout as f64 * ((h >> level) * (w >> level)) as f64).sum()
    }

    /// A network with random weights (TF's variance-scaling: std sqrt(2.6 / fan_in)), drawn on
    /// the host from `seed` so that the result depends on nothing else (no global generator).
    pub fn init(&self, device: &Device, seed: u64) -> Hourglass {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let random = |spec: &ParamSpec| match spec.role {
            Role::Weight => Ok::<_, std::convert::Infallible>(he_normal(&spec.shape, &mut rng)),
            Role::Bias | Role::Beta => Ok(vec![0.0; spec.shape.iter().product()]),
        };
        let Ok(net) = self.build(device, random);
        net
    }

    /// Every parameter of the network, in order: the one list of the hourglass's parameters.
    /// Random initialisation, TF1 and safetensors loading, saving and comparing all follow it
    /// (through [`HourglassConfig::build`] and [`parameter_values`]); a new parameter is a new
    /// field of its module, its entry here and its slot in `build`.
    pub fn parameters(&self) -> Vec<ParamSpec> {
        let spec = |layer: usize, role: Role, shape: &[usize]| ParamSpec { layer, role, shape: shape.to_vec() };
        let mut specs = Vec::new();
        for (k, (cin, cout)) in self.conv_channels().into_iter().enumerate() {
            let layer = k + 1;
            specs.extend([
                spec(layer, Role::Weight, &[cout, cin, 3, 3]),
                spec(layer, Role::Bias, &[cout]),
                spec(layer, Role::Beta, &[cout]),
            ]);
        }
        let (head, out, w0) = (NUM_CONV_BN + 1, self.out_channels, self.widths[0]);
        specs.extend([spec(head, Role::Weight, &[out, w0, 1, 1]), spec(head, Role::Bias, &[out])]);
        specs
    }

    /// Builds the network with the values `make` gives each parameter of
    /// [`HourglassConfig::parameters`] (row-major, of the spec's shape).
    pub fn build<E>(
        &self,
        device: &Device,
        mut make: impl FnMut(&ParamSpec) -> Result<Vec<f32>, E>,
    ) -> Result<Hourglass, E> {
        let mut specs = self.parameters().into_iter();
        let mut next = || -> Result<(Vec<f32>, Vec<usize>), E> {
            let spec = specs.next().expect("build takes exactly the parameters listed");
            Ok((make(&spec)?, spec.shape))
        };
        fn param<const D: usize>((values, shape): (Vec<f32>, Vec<usize>), device: &Device) -> Param<Tensor<D>> {
            Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
        }
        let mut blocks = Vec::with_capacity(NUM_CONV_BN);
        for _ in 0..NUM_CONV_BN {
            blocks.push(ConvBnRelu {
                weight: param(next()?, device),
                bias: param(next()?, device),
                beta: param(next()?, device),
            });
        }
        Ok(Hourglass { blocks, head_weight: param(next()?, device), head_bias: param(next()?, device) })
    }
}

/// What a parameter does in its layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The convolution kernel.
    Weight,
    /// The convolution's bias.
    Bias,
    /// Batch norm's shift.
    Beta,
}

/// One parameter: the original's layer number (`conv1`..`conv18`), its role and shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    pub layer: usize,
    pub role: Role,
    pub shape: Vec<usize>,
}

impl ParamSpec {
    /// The tensor's name in hdnet's safetensors files, under the network's name.
    pub fn file_name(&self, kind: NetKind) -> String {
        let role = match self.role {
            Role::Weight => "weight",
            Role::Bias => "bias",
            Role::Beta => "beta",
        };
        format!("{}.conv{}.{role}", kind.name(), self.layer)
    }

    /// The variable's name in the original's TF1 checkpoints, under the network's scope.
    pub fn tf_name(&self, kind: NetKind) -> String {
        let role = match self.role {
            Role::Weight => "weights",
            Role::Bias => "biases",
            Role::Beta => "beta",
        };
        format!("{}/conv{}/{role}", kind.tf_scope(), self.layer)
    }
}

/// Every parameter of `net` as (shape, row-major values), in [`HourglassConfig::build`]'s order.
pub fn parameter_values(net: &Hourglass) -> Vec<(Vec<usize>, Vec<f32>)> {
    struct Collect(Vec<(Vec<usize>, Vec<f32>)>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let shape = t.dims().to_vec();
            self.0.push((shape, t.try_into_vec_as::<f32>().expect("float parameters")));
        }
    }
    let mut collect = Collect(Vec::new());
    net.visit(&mut collect);
    collect.0
}

fn he_normal(shape: &[usize], rng: &mut ChaCha8Rng) -> Vec<f32> {
    let fan_in = (shape[1] * shape[2] * shape[3]) as f32;
    let std = (2.6 / fan_in).sqrt();
    let count: usize = shape.iter().product();
    // Box-Muller: two uniforms give a standard normal.
    (0..count)
        .map(|_| {
            let (u1, u2): (f32, f32) = (rng.random::<f32>().max(f32::MIN_POSITIVE), rng.random());
            std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
        })
        .collect()
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
        watch.time("conv1x1 (head)", || conv1x1(c17, self.head_weight.val(), self.head_bias.val()))
    }

    /// The device the weights are on.
    pub fn device(&self) -> Device {
        self.head_bias.val().device()
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

    /// The network whose every parameter is `(1 - t) self + t other`: two fine-tunings of one
    /// network averaged, a "model soup" (Wortsman et al., ICML 2022). None when the two differ in
    /// architecture.
    pub fn interpolate(&self, other: &Hourglass, kind: NetKind, t: f32) -> Option<Hourglass> {
        let config = self.config(kind);
        if other.config(kind) != config {
            return None;
        }
        let mut mixed = parameter_values(self)
            .into_iter()
            .zip(parameter_values(other))
            .map(|((_, a), (_, b))| a.iter().zip(&b).map(|(a, b)| (1.0 - t) * a + t * b).collect());
        config.build(&self.device(), |_| mixed.next().ok_or(())).ok()
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

    #[test]
    fn every_image_gets_bit_for_bit_its_own_result_in_a_batch() {
        // 256x256 has a 32x32 level, where a batch of 4 holds as many Winograd tiles as one
        // 64x64 image: the algorithm is chosen per image, so batching changes nothing.
        let device = Device::flex();
        let net = HourglassConfig::new(NetKind::Depth, 2).init(&device, 5);
        let x = Tensor::<4>::random([4, 9, 256, 256], burn::tensor::Distribution::Uniform(0.0, 255.0), &device);
        let together = net.forward(x.clone()).try_into_vec_as::<f32>().unwrap();
        let alone: Vec<f32> =
            (0..4).flat_map(|i| net.forward(x.clone().narrow(0, i, 1)).try_into_vec_as::<f32>().unwrap()).collect();
        assert!(together == alone, "batch of 4 differs from the images alone");
    }

    #[test]
    fn interpolation_mixes_every_parameter_and_refuses_other_architectures() {
        let device = Device::flex();
        let config = HourglassConfig::new(NetKind::Normal, 2);
        let (a, b) = (config.init(&device, 1), config.init(&device, 2));
        let values = |net: &Hourglass| -> Vec<f32> { parameter_values(net).into_iter().flat_map(|(_, v)| v).collect() };
        let (va, vb) = (values(&a), values(&b));
        assert_eq!(values(&a.interpolate(&b, NetKind::Normal, 0.0).unwrap()), va);
        assert_eq!(values(&a.interpolate(&b, NetKind::Normal, 1.0).unwrap()), vb);
        let quarter = values(&a.interpolate(&b, NetKind::Normal, 0.25).unwrap());
        for ((m, x), y) in quarter.iter().zip(&va).zip(&vb) {
            assert!((m - (0.75 * x + 0.25 * y)).abs() <= 1e-6 * (1.0 + x.abs() + y.abs()), "{m} {x} {y}");
        }
        let wider = HourglassConfig::new(NetKind::Normal, 4).init(&device, 1);
        assert!(a.interpolate(&wider, NetKind::Normal, 0.5).is_none());
    }

    #[test]
    fn the_parameter_list_follows_the_modules_own_order() {
        let config = HourglassConfig::new(NetKind::Normal, 2);
        let net = config.init(&Device::flex(), 3);
        let listed: Vec<Vec<usize>> = config.parameters().into_iter().map(|s| s.shape).collect();
        let visited: Vec<Vec<usize>> = parameter_values(&net).into_iter().map(|(shape, _)| shape).collect();
        assert_eq!(listed, visited);
        assert_eq!(listed.len(), 3 * NUM_CONV_BN + 2);
        let head = &config.parameters()[3 * NUM_CONV_BN];
        assert_eq!(head.file_name(NetKind::Normal), "normal_net.conv18.weight");
        assert_eq!(head.tf_name(NetKind::Depth), "hourglass_stack_fused_depth_prediction/conv18/weights");
    }
}
