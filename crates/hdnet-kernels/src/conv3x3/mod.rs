//! The 3x3 convolution (stride 1, SAME zero padding) that makes up almost all of HDNet's work,
//! on plain NCHW `f32` slices, for the CPU: forward, input gradient and weight gradient.
//!
//! No im2col: each image is copied once into a zero-bordered buffer whose rows are `w + 2`
//! wide; then the input pixels that tap (dy, dx) reads for output pixel q are those at q shifted
//! by `dy * (w + 2) + dx`, so every tap is one matrix product of the weights with a strided view
//! of that buffer (the "shifted GEMM"). The output is computed on rows `w + 2` wide too (two
//! columns per row are junk and dropped). The products run on the `gemm` crate's kernels;
//! column chunks of the output (and, for small images, blocks of output channels) are spread
//! over rayon's threads, each chunk accumulating its nine taps while it is in cache.

mod padded;
mod product;
mod shifted_gemm;
mod winograd;

use padded::Padded;
use rayon::prelude::*;
use shifted_gemm::{Chunks, Taps, WeightSplit, conv_into};

/// Sizes of one 3x3 convolution on a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub height: usize,
    pub width: usize,
}

impl ConvShape {
    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.height * self.width
    }

    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.height * self.width
    }

    pub fn weight_len(&self) -> usize {
        self.out_channels * self.in_channels * 9
    }

    fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// The same convolution run backwards: output channels become inputs.
    fn transposed(&self) -> Self {
        Self { in_channels: self.out_channels, out_channels: self.in_channels, ..*self }
    }

    fn check(&self, input: usize, weight: usize, output: usize) {
        assert_eq!(input, self.input_len(), "conv3x3: input length for {self:?}");
        assert_eq!(weight, self.weight_len(), "conv3x3: weight length for {self:?}");
        assert_eq!(output, self.output_len(), "conv3x3: output length for {self:?}");
    }
}

/// `x` [N, Cin, H, W], `weight` [Cout, Cin, 3, 3], `bias` [Cout] -> [N, Cout, H, W].
pub fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, shape: ConvShape) -> Vec<f32> {
    let mut out = crate::zeroed(shape.output_len());
    shape.check(x.len(), weight.len(), out.len());
    if winograd::applies_to_forward(&shape) {
        winograd::convolve(x, weight, bias, shape, &mut out);
    } else {
        convolve(x, Taps::forward(weight, shape.in_channels), bias, shape, &mut out);
    }
    out
}

/// Gradient with respect to the input: the convolution of `grad_out` [N, Cout, H, W] with the
/// weights transposed and flipped -> [N, Cin, H, W].
pub fn input_grad(grad_out: &[f32], weight: &[f32], shape: ConvShape) -> Vec<f32> {
    let mut grad_x = crate::zeroed(shape.input_len());
    shape.check(grad_x.len(), weight.len(), grad_out.len());
    if winograd::applies_to_input_grad(&shape) {
        let flipped = flipped_transposed(weight, shape.out_channels, shape.in_channels);
        winograd::convolve(grad_out, &flipped, None, shape.transposed(), &mut grad_x);
    } else {
        convolve(grad_out, Taps::flipped(weight, shape.in_channels), None, shape.transposed(), &mut grad_x);
    }
    grad_x
}

/// Gradient with respect to the weights: for each tap, `grad_out` times the shifted input,
/// summed over pixels and images -> [Cout, Cin, 3, 3].
pub fn weight_grad(x: &[f32], grad_out: &[f32], shape: ConvShape) -> Vec<f32> {
    shape.check(x.len(), shape.weight_len(), grad_out.len());
    if winograd::applies_to_weight_grad(&shape) {
        return winograd::weight_grad(x, grad_out, shape);
    }
    let (cin, cout) = (shape.in_channels, shape.out_channels);
    let padded_x =
        Padded::batch(x, shape.batch, cin, shape.height, shape.width, (shape.height + 2) * (shape.width + 2) + 2);
    // grad_out on rows w + 2 wide with zero junk columns, so that the junk of the shifted
    // input multiplies zeros.
    let widened = Padded::widened(grad_out, shape.batch, cout, shape.height, shape.width);
    let split = WeightSplit::plan(shape.batch * widened.row_span(), cout);
    let tasks: Vec<(usize, (usize, Vec<f32>))> = (0..9 * split.parts)
        .into_par_iter()
        .map(|task| {
            (
                task / split.parts,
                shifted_gemm::weight_tap(&padded_x, &widened, task / split.parts, task % split.parts, split),
            )
        })
        .collect();
    // [tap] -> [channel][Cin] blocks into [Cout][Cin][tap], one output channel per job (a
    // serial scatter here was 4% of a training step)
    let mut grad_w = vec![0.0; shape.weight_len()];
    grad_w.par_chunks_exact_mut(cin * 9).enumerate().for_each(|(channel, kernels)| {
        for (tap, (first, block)) in &tasks {
            let Some(row) = channel.checked_sub(*first).and_then(|r| block.get(r * cin..(r + 1) * cin)) else {
                continue;
            };
            for (kernel, value) in kernels.chunks_exact_mut(9).zip(row) {
                kernel[*tap] += value;
            }
        }
    });
    grad_w
}

/// [Cout, Cin, 3, 3] -> [Cin, Cout, 3, 3] with each kernel turned by 180 degrees.
fn flipped_transposed(weight: &[f32], out_channels: usize, in_channels: usize) -> Vec<f32> {
    let mut flipped = vec![0.0; weight.len()];
    for (pair, kernel) in weight.chunks_exact(9).enumerate() {
        let (co, ci) = (pair / in_channels, pair % in_channels);
        for (tap, &value) in kernel.iter().enumerate() {
            flipped[(ci * out_channels + co) * 9 + 8 - tap] = value;
        }
    }
    flipped
}

/// Sum of `grad_out` [N, C, H, W] over images and pixels -> [C], one channel per job.
pub fn bias_grad(grad_out: &[f32], batch: usize, channels: usize, pixels: usize) -> Vec<f32> {
    assert_eq!(grad_out.len(), batch * channels * pixels, "bias_grad: gradient length");
    (0..channels)
        .into_par_iter()
        .map(|c| (0..batch).map(|n| grad_out[(n * channels + c) * pixels..][..pixels].iter().sum::<f32>()).sum())
        .collect()
}

/// out [N, Cout, H, W] = sum over taps of taps[tap] @ shifted(x), plus bias.
fn convolve(x: &[f32], taps: Taps, bias: Option<&[f32]>, shape: ConvShape, out: &mut [f32]) {
    let ConvShape { batch, in_channels, out_channels, height, width } = shape;
    let plan = Chunks::plan(out_channels, height, width, batch);
    let padded = Padded::batch(x, batch, in_channels, height, width, plan.plane_len(height));
    let mut tiles = crate::zeroed(batch * plan.tiles_per_image() * plan.tile_len());
    tiles
        .par_chunks_mut(plan.tile_len())
        .enumerate()
        .for_each(|(tile, dst)| conv_into(&padded, &taps, &plan, tile, dst));
    // drop the junk columns, add the bias
    out.par_chunks_mut(shape.pixels()).enumerate().for_each(|(plane, dst)| {
        let (image, channel) = (plane / out_channels, plane % out_channels);
        let b = bias.map_or(0.0, |b| b[channel]);
        for (y, row) in dst.chunks_exact_mut(width).enumerate() {
            let src = &tiles[plan.locate(image, channel, y)..][..width];
            for (o, s) in row.iter_mut().zip(src) {
                *o = s + b;
            }
        }
    });
}

#[cfg(test)]
mod tests;
