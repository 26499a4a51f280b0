//! The layers in which HDNet differs from stock Burn modules, or runs them differently.

use burn::prelude::*;
use burn::tensor::module::{batch_norm_train, max_pool2d};
use burn::tensor::ops::MaxPoolOptions;

/// TF1 `batch_norm(scale=False, is_training=True)` as the original runs it at inference: each
/// image is normalised with its OWN per-channel mean and biased variance, then shifted by beta.
/// Statistics per image (not per batch) so that batching never changes an image's result.
pub fn image_batch_norm(x: Tensor<4>, beta: Tensor<1>, epsilon: f64) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    // Folding the batch into the channels makes Burn's batch statistics per image.
    let folded = x.reshape([1, b * c, h, w]);
    let gamma = Tensor::ones([b * c], &folded.device());
    let beta = if b == 1 { beta } else { beta.repeat_dim(0, b) };
    batch_norm_train(folded, gamma, beta, epsilon).output.reshape([b, c, h, w])
}

/// 2x2 max pooling, stride 2 (TF `max_pool` SAME on even sizes needs no padding).
pub fn max_pool_2x2(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([2, 2]))
}

/// The head's 1x1 convolution, x [N, Cin, H, W] -> [N, Cout, H, W], as one matrix product per
/// image: Burn's conv2d runs it through its general convolution on one thread (README, Figures).
pub fn conv1x1(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>) -> Tensor<4> {
    let [n, cin, h, w] = x.dims();
    let cout = weight.dims()[0];
    let weight = weight.reshape([1, cout, cin]).expand([n, cout, cin]);
    let y = weight.matmul(x.reshape([n, cin, h * w])) + bias.reshape([1, cout, 1]);
    y.reshape([n, cout, h, w])
}

/// TF1 legacy `resize_images` bilinear x2 (no corner alignment, no half-pixel offset): source
/// position o/2, so even outputs copy the input, odd outputs average a pixel and its next
/// neighbour, and the last row/column repeats. Columns first, then rows, each as
/// `a + (b - a) * 0.5`, the order and form of TF's kernel, so results agree to the last bit.
pub fn upsample_2x_tf_legacy(x: Tensor<4>) -> Tensor<4> {
    interleave_midpoints(interleave_midpoints(x, 3), 2)
}

fn interleave_midpoints(x: Tensor<4>, dim: usize) -> Tensor<4> {
    let n = x.dims()[dim];
    let next = Tensor::cat(vec![x.clone().narrow(dim, 1, n - 1), x.clone().narrow(dim, n - 1, 1)], dim);
    let mid = x.clone() + (next - x.clone()) * 0.5;
    let mut shape = x.dims();
    shape[dim] *= 2;
    Tensor::stack::<5>(vec![x, mid], dim + 1).reshape(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(values: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(values, shape), &Device::flex())
    }

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.try_into_vec_as::<f32>().unwrap()
    }

    #[test]
    fn upsample_matches_tf_legacy_rule() {
        // 1x1x2x3 input [[0, 2, 4], [10, 12, 14]] -> 4x6.
        let up = values(upsample_2x_tf_legacy(tensor(vec![0.0, 2.0, 4.0, 10.0, 12.0, 14.0], [1, 1, 2, 3])));
        let row0 = [0.0, 1.0, 2.0, 3.0, 4.0, 4.0];
        let row1 = [5.0, 6.0, 7.0, 8.0, 9.0, 9.0];
        let row2 = [10.0, 11.0, 12.0, 13.0, 14.0, 14.0];
        let want: Vec<f32> = [row0, row1, row2, row2].concat();
        assert_eq!(up, want);
    }

    /// Against Burn's conv2d (the reference): output and the three gradients of a loss that
    /// weights every output differently, batch 2. Tolerance 1e-5 of the largest value.
    #[test]
    fn conv1x1_matches_burns_conv2d_forward_and_gradients() {
        use burn::tensor::Distribution;
        use burn::tensor::module::conv2d;
        use burn::tensor::ops::ConvOptions;
        let device = Device::flex().autodiff();
        let normal = |shape: [usize; 4]| Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let (x, w, g) = (normal([2, 6, 5, 7]), normal([3, 6, 1, 1]), normal([2, 3, 5, 7]));
        let b = Tensor::<1>::random([3], Distribution::Normal(0.0, 1.0), &device);
        let run = |matmul: bool| {
            let (x, w, b) = (x.clone().require_grad(), w.clone().require_grad(), b.clone().require_grad());
            let out = if matmul {
                conv1x1(x.clone(), w.clone(), b.clone())
            } else {
                conv2d(x.clone(), w.clone(), Some(b.clone()), ConvOptions::new([1, 1], [0, 0], [1, 1], 1))
            };
            let grads = (out.clone() * g.clone()).sum().backward();
            let grad_b = b.grad(&grads).unwrap().reshape([1, 3, 1, 1]);
            [out.inner(), x.grad(&grads).unwrap(), w.grad(&grads).unwrap(), grad_b].map(values)
        };
        for (name, (a, b)) in ["output", "input gradient", "weight gradient", "bias gradient"]
            .into_iter()
            .zip(run(true).into_iter().zip(run(false)))
        {
            let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let diff = a.iter().zip(&b).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(a.len() == b.len() && diff <= 1e-5 * scale, "{name}: {diff} of {scale}");
        }
    }

    #[test]
    fn batch_norm_uses_each_images_own_statistics() {
        let a = vec![1.0, 2.0, 3.0, 6.0];
        let b = vec![-4.0, 0.0, 10.0, 30.0];
        let beta = || Tensor::from_data(TensorData::new(vec![0.5f32], [1]), &Device::flex());
        let alone_a = values(image_batch_norm(tensor(a.clone(), [1, 1, 2, 2]), beta(), 1e-3));
        let alone_b = values(image_batch_norm(tensor(b.clone(), [1, 1, 2, 2]), beta(), 1e-3));
        let both = values(image_batch_norm(tensor([a.clone(), b].concat(), [2, 1, 2, 2]), beta(), 1e-3));
        assert_eq!(both, [alone_a.clone(), alone_b].concat());
        // mean 3, biased variance 3.5: (x - 3) / sqrt(3.501) + 0.5
        let want: Vec<f32> = a.iter().map(|x| (x - 3.0) / 3.501f32.sqrt() + 0.5).collect();
        for (g, w) in alone_a.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
    }
}
