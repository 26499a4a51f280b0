//! A TFLite operator graph run with Burn tensor operations, in TFLite's conventions: SAME padding
//! that puts the odd pixel after, bilinear resizing with TFLite's pixel-centre rules, hard-swish,
//! and MediaPipe's transposed convolution. Weights are converted once at load (float16
//! dequantised, NHWC filters to Burn's NCHW layout); activations flow as NCHW tensors.
//!
//! Layout rule: a tensor TFLite sees as NHWC `[n, h, w, c]` is held as NCHW `[n, c, h, w]`; one
//! of rank 2 `[n, c]` as `[n, c, 1, 1]`.

use std::collections::HashMap;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::module::{avg_pool2d, conv_transpose2d, conv2d, interpolate, max_pool2d};
use burn::tensor::ops::{
    AvgPoolOptions, ConvOptions, ConvTransposeOptions, InterpolateMode, InterpolateOptions, MaxPoolOptions, PadMode,
};
use hdnet_formats::FileError;
use hdnet_formats::tflite::{Activation, Conv, Model, Op, Padding, Pool};

/// One operator, ready to run.
#[derive(Debug)]
enum Kernel {
    Conv { weight: Tensor<4>, bias: Tensor<1>, options: ConvOptions<2>, activation: Activation },
    TransposeConv { weight: Tensor<4>, bias: Tensor<1>, stride: [usize; 2], crop: [(usize, usize); 2] },
    Add(Activation),
    Mul(Activation),
    Pad([(usize, usize); 4]),
    MaxPool(MaxPoolOptions<2>, Activation),
    AvgPool(AvgPoolOptions<2>, Activation),
    Resize { size: [usize; 2], align_corners: bool },
    Reshape(Vec<usize>),
    Logistic,
    Relu,
    HardSwish,
}

#[derive(Debug)]
struct Step {
    kernel: Kernel,
    /// Tensor indices of the runtime inputs (weights are inside the kernel).
    inputs: Vec<usize>,
    output: usize,
}

/// A model's graph on one device.
#[derive(Debug)]
pub struct Graph {
    steps: Vec<Step>,
    /// Constant operands of element-wise operators, in the NCHW layout.
    constants: HashMap<usize, Tensor<4>>,
    input: usize,
    /// The input's NHWC shape.
    pub input_shape: Vec<usize>,
    /// The outputs: tensor index and NHWC shape.
    outputs: Vec<(usize, Vec<usize>)>,
    /// Per tensor, the last step that reads it (values are dropped after it).
    last_use: Vec<usize>,
}

/// What loading a graph can fail on (the reader has already named the file).
type Load<T> = Result<T, String>;

impl Graph {
    /// The graph of a `.tflite` file's bytes (`path` names it in errors).
    pub fn from_tflite(path: &Path, bytes: &[u8], device: &Device) -> Result<Self, FileError> {
        let model = Model::from_bytes(path, bytes)?;
        Self::new(&model, device).map_err(|e| FileError::new(path, e))
    }

    fn new(model: &Model, device: &Device) -> Load<Self> {
        let [input] = model.inputs[..] else { return Err(format!("{} graph inputs, expected 1", model.inputs.len())) };
        let constants = Constants::of(model);
        let mut steps = Vec::new();
        let mut elementwise = HashMap::new();
        for (n, operator) in model.operators.iter().enumerate() {
            if operator.op == Op::Dequantize {
                continue;
            }
            let step = step(model, &constants, operator, device).map_err(|e| format!("operator {n}: {e}"))?;
            for &i in &step.inputs {
                if let Some(values) = constants.f32(i) {
                    elementwise.insert(i, nchw_constant(values, &model.tensors[i].shape, device)?);
                }
            }
            steps.push(step);
        }
        let mut last_use = vec![usize::MAX; model.tensors.len()];
        for (n, step) in steps.iter().enumerate() {
            for &i in &step.inputs {
                last_use[i] = n;
            }
        }
        let outputs = model.outputs.iter().map(|&i| (i, model.tensors[i].shape.clone())).collect();
        Ok(Self {
            steps,
            constants: elementwise,
            input,
            input_shape: model.tensors[input].shape.clone(),
            outputs,
            last_use,
        })
    }

    /// Runs the graph on an NHWC input of the graph's input shape; returns each output as its
    /// NHWC (row-major) values.
    pub fn run(&self, input: Tensor<4>) -> Vec<Vec<f32>> {
        let mut values: HashMap<usize, Tensor<4>> = HashMap::new();
        values.insert(self.input, input.permute([0, 3, 1, 2]));
        for (n, step) in self.steps.iter().enumerate() {
            let args =
                step.inputs.iter().map(|i| self.constants.get(i).unwrap_or_else(|| &values[i]).clone()).collect();
            values.insert(step.output, run(&step.kernel, args));
            for i in &step.inputs {
                if self.last_use[*i] == n && !self.outputs.iter().any(|(o, _)| o == i) {
                    values.remove(i);
                }
            }
        }
        self.outputs
            .iter()
            .map(|(i, _)| values[i].clone().permute([0, 2, 3, 1]).try_into_vec_as::<f32>().expect("f32 outputs"))
            .collect()
    }
}

/// The model's constant tensors as f32, with DEQUANTIZE outputs standing for their float16 inputs.
struct Constants<'a> {
    model: &'a Model,
    dequantized: HashMap<usize, usize>,
}

impl<'a> Constants<'a> {
    fn of(model: &'a Model) -> Self {
        let dequantized = model
            .operators
            .iter()
            .filter(|o| o.op == Op::Dequantize)
            .filter_map(|o| Some((*o.outputs.first()?, (*o.inputs.first()?)?)))
            .collect();
        Self { model, dequantized }
    }

    fn f32(&self, tensor: usize) -> Option<Vec<f32>> {
        let source = self.dequantized.get(&tensor).copied().unwrap_or(tensor);
        self.model.tensors[source].f32_values()
    }

    /// Constant `tensor` with `shape` (NHWC), or why not.
    fn shaped(&self, tensor: Option<usize>, what: &str) -> Load<(Vec<f32>, Vec<usize>)> {
        let tensor = tensor.ok_or(format!("no {what}"))?;
        let values = self.f32(tensor).ok_or(format!("the {what} is not a float constant"))?;
        Ok((values, self.model.tensors[tensor].shape.clone()))
    }

    /// A constant 4-D filter and its shape.
    fn filter(&self, tensor: Option<usize>) -> Load<(Vec<f32>, [usize; 4])> {
        let (values, shape) = self.shaped(tensor, "filter")?;
        let shape = shape[..].try_into().map_err(|_| format!("filter of shape {shape:?}"))?;
        Ok((values, shape))
    }

    fn ints(&self, tensor: Option<usize>, what: &str) -> Load<Vec<i32>> {
        tensor.and_then(|t| self.model.tensors[t].i32_values()).ok_or(format!("the {what} is not an int32 constant"))
    }
}

fn step(
    model: &Model,
    constants: &Constants,
    operator: &hdnet_formats::tflite::Operator,
    device: &Device,
) -> Load<Step> {
    let input = |k: usize| operator.inputs.get(k).copied().flatten();
    let data = input(0).ok_or("no data input")?;
    let shape = &model.tensors[data].shape;
    let output = *operator.outputs.first().ok_or("no output")?;
    let inputs = match operator.op {
        Op::Add(_) | Op::Mul(_) => vec![data, input(1).ok_or("no second operand")?],
        _ => vec![data],
    };
    let kernel = match &operator.op {
        Op::Conv2d(conv) | Op::DepthwiseConv2d(conv) => {
            let depthwise = matches!(operator.op, Op::DepthwiseConv2d(_));
            conv_kernel(conv, depthwise, constants, [input(1), input(2)], shape, device)?
        }
        Op::TransposeConvBias(conv) => transpose_conv_kernel(conv, constants, [input(1), input(2)], shape, device)?,
        Op::Add(act) => Kernel::Add(*act),
        Op::Mul(act) => Kernel::Mul(*act),
        Op::Pad => {
            let p = constants.ints(input(1), "paddings")?;
            if p.len() != 8 || p.iter().any(|&v| v < 0) {
                return Err(format!("paddings {p:?}, expected 4 pairs of counts"));
            }
            let pair = |d: usize| (p[2 * d] as usize, p[2 * d + 1] as usize);
            Kernel::Pad([pair(0), pair(3), pair(1), pair(2)])
        }
        Op::MaxPool2d(pool) => {
            let padding = same_or_valid(&pool_conv(pool), spatial(shape)?, pool.filter);
            let options = MaxPoolOptions::new(pool.filter).with_stride(pool.stride).with_padding_pairs(padding);
            Kernel::MaxPool(options, pool.activation)
        }
        Op::AveragePool2d(pool) => {
            let padding = same_or_valid(&pool_conv(pool), spatial(shape)?, pool.filter);
            let mut options = AvgPoolOptions::new(pool.filter).with_stride(pool.stride).with_padding_pairs(padding);
            options.count_include_pad = false;
            Kernel::AvgPool(options, pool.activation)
        }
        Op::ResizeBilinear { align_corners, half_pixel_centers } => {
            resize_kernel(&constants.ints(input(1), "size")?, *align_corners, *half_pixel_centers)?
        }
        Op::Reshape { new_shape } => {
            let target = match new_shape {
                Some(s) => s.clone(),
                None => constants.ints(input(1), "shape")?,
            };
            Kernel::Reshape(reshape_target(&target, shape)?)
        }
        Op::Logistic => Kernel::Logistic,
        Op::Relu => Kernel::Relu,
        Op::HardSwish => Kernel::HardSwish,
        Op::Dequantize => unreachable!("DEQUANTIZE outputs are constants"),
    };
    Ok(Step { kernel, inputs, output })
}

/// The [height, width] of an NHWC `shape`.
fn spatial(shape: &[usize]) -> Load<[usize; 2]> {
    match shape[..] {
        [_, h, w, _] => Ok([h, w]),
        _ => Err(format!("input of shape {shape:?}, expected NHWC")),
    }
}

/// A (depthwise) convolution of an input of NHWC `shape` by the constant tensors `[filter, bias]`.
fn conv_kernel(
    conv: &Conv,
    depthwise: bool,
    constants: &Constants,
    [filter_at, bias_at]: [Option<usize>; 2],
    shape: &[usize],
    device: &Device,
) -> Load<Kernel> {
    let (w, [a, kh, kw, b]) = constants.filter(filter_at)?;
    let (weight, groups) = if depthwise {
        let channels = *shape.last().unwrap_or(&0);
        (filter(&w, [b, kh, kw], |o, y, x| y * kw * b + x * b + o), channels.max(1))
    } else {
        (filter(&w, [a, kh, kw], |o, y, x| ((o * kh + y) * kw + x) * b), 1)
    };
    let out_channels = if depthwise { b } else { a };
    let weight = weight_tensor(weight, [out_channels, if depthwise { 1 } else { b }, kh, kw], device);
    let bias = bias_tensor(constants, bias_at, out_channels, device)?;
    let padding = same_or_valid(conv, spatial(shape)?, [kh, kw]);
    let options = ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, groups);
    Ok(Kernel::Conv { weight, bias, options, activation: conv.activation })
}

/// MediaPipe's transposed convolution of an input of NHWC `shape` by the constant tensors
/// `[filter, bias]`.
fn transpose_conv_kernel(
    conv: &Conv,
    constants: &Constants,
    [filter_at, bias_at]: [Option<usize>; 2],
    shape: &[usize],
    device: &Device,
) -> Load<Kernel> {
    // The filter is [out, kh, kw, in]; Burn's weight is [in, out, kh, kw].
    let (w, [out, kh, kw, inp]) = constants.filter(filter_at)?;
    let mut weight = vec![0.0; w.len()];
    for (o, y, x, i) in itertools_4(out, kh, kw, inp) {
        weight[((i * out + o) * kh + y) * kw + x] = w[((o * kh + y) * kw + x) * inp + i];
    }
    let weight = weight_tensor(weight, [inp, out, kh, kw], device);
    let bias = bias_tensor(constants, bias_at, out, device)?;
    let crop = transposed_crop(conv, spatial(shape)?, [kh, kw]);
    Ok(Kernel::TransposeConv { weight, bias, stride: conv.stride, crop })
}

/// Bilinear resizing to `size` ([height, width]) by one of TFLite's two pixel-centre rules.
fn resize_kernel(size: &[i32], align_corners: bool, half_pixel_centers: bool) -> Load<Kernel> {
    let [Ok(h), Ok(w)] = size.try_into().map(|s: [i32; 2]| s.map(usize::try_from)).map_err(|_| "size")? else {
        return Err(format!("size {size:?}"));
    };
    if align_corners == half_pixel_centers {
        return Err("bilinear resizing by TFLite's legacy pixel rule is not supported".into());
    }
    Ok(Kernel::Resize { size: [h, w], align_corners })
}

/// (o, y, x, i) over a 4-D index space.
fn itertools_4(a: usize, b: usize, c: usize, d: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
    (0..a).flat_map(move |o| (0..b).flat_map(move |y| (0..c).flat_map(move |x| (0..d).map(move |i| (o, y, x, i)))))
}

/// An NCHW filter `[out, in, kh, kw]` from NHWC values: `at(o, y, x)` is the index of input
/// channel 0 of output `o` at tap (y, x); input channels follow contiguously.
fn filter(w: &[f32], [out, kh, kw]: [usize; 3], at: impl Fn(usize, usize, usize) -> usize) -> Vec<f32> {
    let inputs = w.len() / (out * kh * kw).max(1);
    let mut nchw = Vec::with_capacity(w.len());
    for o in 0..out {
        for i in 0..inputs {
            for y in 0..kh {
                for x in 0..kw {
                    nchw.push(w[at(o, y, x) + i]);
                }
            }
        }
    }
    nchw
}

fn weight_tensor(values: Vec<f32>, shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn bias_tensor(constants: &Constants, bias: Option<usize>, channels: usize, device: &Device) -> Load<Tensor<1>> {
    let values = match bias {
        Some(_) => constants.shaped(bias, "bias")?.0,
        None => vec![0.0; channels],
    };
    if values.len() != channels {
        return Err(format!("a bias of {} values for {channels} channels", values.len()));
    }
    Ok(Tensor::from_data(TensorData::new(values, [channels]), device))
}

fn pool_conv(pool: &Pool) -> Conv {
    Conv { padding: pool.padding, stride: pool.stride, dilation: [1, 1], activation: pool.activation }
}

/// TFLite's padding of a window `kernel` over `size`: SAME gives ceil(size / stride) outputs and
/// puts the odd pixel after; VALID none.
fn same_or_valid(conv: &Conv, size: [usize; 2], kernel: [usize; 2]) -> [(usize, usize); 2] {
    std::array::from_fn(|d| match conv.padding {
        Padding::Valid => (0, 0),
        Padding::Same => {
            let out = size[d].div_ceil(conv.stride[d]);
            let span = (kernel[d] - 1) * conv.dilation[d] + 1;
            let total = ((out - 1) * conv.stride[d] + span).saturating_sub(size[d]);
            (total / 2, total - total / 2)
        }
    })
}

/// Which rows and columns of the full transposed convolution TFLite keeps: the output is
/// `size * stride` (SAME) or the full size (VALID), starting after the padding SAME puts before.
fn transposed_crop(conv: &Conv, size: [usize; 2], kernel: [usize; 2]) -> [(usize, usize); 2] {
    std::array::from_fn(|d| {
        let full = (size[d] - 1) * conv.stride[d] + kernel[d];
        match conv.padding {
            Padding::Valid => (0, full),
            Padding::Same => {
                let out = size[d] * conv.stride[d];
                let total = ((size[d] - 1) * conv.stride[d] + kernel[d]).saturating_sub(out);
                (total / 2, out)
            }
        }
    })
}

/// The NHWC target shape of a reshape, with its one -1 resolved.
fn reshape_target(target: &[i32], input: &[usize]) -> Load<Vec<usize>> {
    let elements: usize = input.iter().product();
    let known: usize = target.iter().filter(|&&d| d >= 0).map(|&d| d as usize).product();
    let resolved: Vec<usize> =
        target.iter().map(|&d| if d < 0 { elements / known.max(1) } else { d as usize }).collect();
    if resolved.iter().product::<usize>() != elements || target.iter().filter(|&&d| d < 0).count() > 1 {
        return Err(format!("reshape of {input:?} to {target:?}"));
    }
    if ![2, 4].contains(&resolved.len()) {
        return Err(format!("reshape to rank {} (hdnet runs ranks 2 and 4)", resolved.len()));
    }
    Ok(resolved)
}

/// A constant operand of an element-wise operator in the NCHW layout.
fn nchw_constant(values: Vec<f32>, shape: &[usize], device: &Device) -> Load<Tensor<4>> {
    let t = |s: [usize; 4]| Tensor::<4>::from_data(TensorData::new(values.clone(), s), device);
    Ok(match shape[..] {
        [] => t([1, 1, 1, 1]),
        [c] => t([1, c, 1, 1]),
        [n, c] => t([n, c, 1, 1]),
        [n, h, w, c] => t([n, h, w, c]).permute([0, 3, 1, 2]),
        _ => return Err(format!("a constant of shape {shape:?}")),
    })
}

fn activate(x: Tensor<4>, activation: Activation) -> Tensor<4> {
    match activation {
        Activation::None => x,
        Activation::Relu => relu(x),
        Activation::ReluN1To1 => x.clamp(-1.0, 1.0),
        Activation::Relu6 => x.clamp(0.0, 6.0),
        Activation::Tanh => x.tanh(),
    }
}

fn run(kernel: &Kernel, mut args: Vec<Tensor<4>>) -> Tensor<4> {
    let x = args.remove(0);
    match kernel {
        Kernel::Conv { weight, bias, options, activation } => {
            activate(conv2d(x, weight.clone(), Some(bias.clone()), options.clone()), *activation)
        }
        Kernel::TransposeConv { weight, bias, stride, crop } => {
            let options = ConvTransposeOptions::new(*stride, [0, 0], [0, 0], [1, 1], 1);
            let full = conv_transpose2d(x, weight.clone(), Some(bias.clone()), options);
            let [n, c, _, _] = full.dims();
            full.slice([0..n, 0..c, crop[0].0..crop[0].0 + crop[0].1, crop[1].0..crop[1].0 + crop[1].1])
        }
        Kernel::Add(activation) => activate(x + args.remove(0), *activation),
        Kernel::Mul(activation) => activate(x * args.remove(0), *activation),
        Kernel::Pad(pads) => x.pad(*pads, PadMode::Constant(0.0)),
        Kernel::MaxPool(options, activation) => activate(max_pool2d(x, options.clone()), *activation),
        Kernel::AvgPool(options, activation) => activate(avg_pool2d(x, options.clone()), *activation),
        Kernel::Resize { size, align_corners } => resize(x, *size, *align_corners),
        Kernel::Reshape(shape) => {
            let nhwc = x.permute([0, 2, 3, 1]);
            match shape[..] {
                [n, h, w, c] => nhwc.reshape([n, h, w, c]).permute([0, 3, 1, 2]),
                [n, c] => nhwc.reshape([n, c, 1, 1]),
                _ => unreachable!("reshape targets are checked at load"),
            }
        }
        Kernel::Logistic => sigmoid(x),
        Kernel::Relu => relu(x),
        Kernel::HardSwish => x.clone() * (x + 3.0).clamp(0.0, 6.0) / 6.0,
    }
}

/// TFLite's bilinear resizing of an NCHW tensor to `size`. Its two rules are Burn's: half-pixel
/// centres (source max(0, (o + 0.5) * in / out - 0.5)) and aligned corners (o * (in - 1) /
/// (out - 1)), neighbours clamped to the last pixel.
fn resize(x: Tensor<4>, size: [usize; 2], align_corners: bool) -> Tensor<4> {
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Bilinear).with_align_corners(align_corners).with_output_size(size),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_puts_the_odd_pixel_after() {
        let conv = |stride| Conv {
            padding: Padding::Same,
            stride: [stride; 2],
            dilation: [1, 1],
            activation: Activation::None,
        };
        assert_eq!(same_or_valid(&conv(2), [256, 255], [3, 3]), [(0, 1), (1, 1)]);
        assert_eq!(same_or_valid(&conv(1), [64, 64], [5, 5]), [(2, 2), (2, 2)]);
        assert_eq!(transposed_crop(&conv(2), [128, 128], [4, 4]), [(1, 256), (1, 256)]);
    }

    /// Half-pixel bilinear resizing of [0, 10, 20, 30] to 8, computed by hand with TFLite's rule:
    /// sources max(0, (o + 0.5) / 2 - 0.5) = 0, 0.25, 0.75, ..., 3.25 (its neighbour clamped).
    #[test]
    fn resize_follows_tflites_half_pixel_rule() {
        let device = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(vec![0.0f32, 10.0, 20.0, 30.0], [1, 1, 1, 4]), &device);
        let y: Vec<f32> = resize(x, [1, 8], false).try_into_vec_as::<f32>().unwrap();
        assert_eq!(y, vec![0.0, 2.5, 7.5, 12.5, 17.5, 22.5, 27.5, 30.0]);
    }
}
