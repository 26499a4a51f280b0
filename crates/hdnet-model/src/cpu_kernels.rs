//! The hourglass's operations (3x3 convolution, per-image batch norm + ReLU, max pooling,
//! TF1-legacy upsampling): hdnet-kernels' CPU kernels on the Flex backend (forward and backward, registered as a Burn
//! backend extension so that training uses them too), Burn's own operations on every other
//! device (GPUs) and dtype, which also serve as the reference the kernels are tested against.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::{Autodiff, NodeId};
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::activation::relu;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use hdnet_kernels::batch_norm_relu::Planes;
use hdnet_kernels::conv3x3::ConvShape;
use hdnet_kernels::resample;

use crate::layers::{self, image_batch_norm};

/// SAME padding, stride 1: the only 3x3 convolution HDNet has.
fn same_3x3() -> ConvOptions<2> {
    ConvOptions::new([1, 1], [1, 1], [1, 1], 1)
}

/// Whether the CPU kernels can take tensors: f32 on the Flex backend.
pub fn on_cpu_kernels(tensors: &[DType], device: &Device) -> bool {
    device.clone().inner() == Device::flex() && tensors.iter().all(|&d| d == DType::F32)
}

/// x [N, Cin, H, W], weight [Cout, Cin, 3, 3], bias [Cout] -> [N, Cout, H, W].
pub fn conv3x3(x: Tensor<4>, weight: Tensor<4>, bias: Tensor<1>) -> Tensor<4> {
    if on_cpu_kernels(&[x.dtype(), weight.dtype(), bias.dtype()], &x.device()) {
        Tensor::from_dispatch(Dispatch::conv3x3(x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch()))
    } else {
        conv2d(x, weight, Some(bias), same_3x3())
    }
}

/// Per-image batch norm (shift only) then ReLU, see [`image_batch_norm`].
pub fn batch_norm_relu(x: Tensor<4>, beta: Tensor<1>, epsilon: f64) -> Tensor<4> {
    if on_cpu_kernels(&[x.dtype(), beta.dtype()], &x.device()) {
        Tensor::from_dispatch(Dispatch::batch_norm_relu(x.into_dispatch(), beta.into_dispatch(), epsilon))
    } else {
        relu(image_batch_norm(x, beta, epsilon))
    }
}

/// 2x2 max pooling, stride 2, see [`layers::max_pool_2x2`].
pub fn max_pool_2x2(x: Tensor<4>) -> Tensor<4> {
    if on_cpu_kernels(&[x.dtype()], &x.device()) {
        Tensor::from_dispatch(Dispatch::max_pool_2x2(x.into_dispatch()))
    } else {
        layers::max_pool_2x2(x)
    }
}

/// TF1-legacy bilinear x2 upsampling, see [`layers::upsample_2x_tf_legacy`].
pub fn upsample_2x(x: Tensor<4>) -> Tensor<4> {
    if on_cpu_kernels(&[x.dtype()], &x.device()) {
        Tensor::from_dispatch(Dispatch::upsample_2x(x.into_dispatch()))
    } else {
        layers::upsample_2x_tf_legacy(x)
    }
}

/// The forward operations, dispatched to the CPU kernels on Flex and recorded for the backward
/// pass on Autodiff.
#[backend_extension(Flex, Autodiff)]
pub trait CpuKernels: Backend {
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;
    fn batch_norm_relu(x: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self>;
    fn max_pool_2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;
    fn upsample_2x(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Their gradients, which only Autodiff's backward pass calls, on the backend it wraps: a plain
/// trait, never dispatched and never differentiated again.
pub trait CpuKernelGrads: Backend {
    fn conv3x3_input_grad(grad_out: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
    fn conv3x3_weight_grad(x: FloatTensor<Self>, grad_out: FloatTensor<Self>) -> FloatTensor<Self>;
    fn conv3x3_bias_grad(grad_out: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Gradients with respect to x and beta.
    fn batch_norm_relu_backward(
        x: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> [FloatTensor<Self>; 2];
    fn max_pool_2x2_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
    fn upsample_2x_backward(grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

fn planes(x: &FloatTensor<Flex>) -> Planes {
    let [batch, channels, h, w] = x.shape().dims::<4>();
    Planes { batch, channels, pixels: h * w }
}

/// Sizes of the convolution of `x` [N, Cin, H, W] into `out_channels`.
fn conv_shape(x: &[usize; 4], out_channels: usize) -> ConvShape {
    ConvShape { batch: x[0], in_channels: x[1], out_channels, height: x[2], width: x[3] }
}

/// The f32 values of a Flex tensor in standard (row-major) order.
pub fn values(t: &FloatTensor<Flex>) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(v) if t.is_contiguous() => std::borrow::Cow::Borrowed(v),
        _ => std::borrow::Cow::Owned(
            t.to_contiguous().as_slice::<f32>().expect("the kernels are only given f32 tensors").to_vec(),
        ),
    }
}

fn flex_tensor(values: Vec<f32>, shape: [usize; 4]) -> FloatTensor<Flex> {
    Flex::float_from_data(TensorData::new(values, shape), &Default::default())
}

impl CpuKernels for Flex {
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        if [x.dtype(), weight.dtype(), bias.dtype()] != [DType::F32; 3] {
            return Flex::conv2d(x, weight, Some(bias), same_3x3());
        }
        let shape = conv_shape(&x.shape().dims::<4>(), weight.shape().dims::<4>()[0]);
        let out = hdnet_kernels::conv3x3::forward(&values(&x), &values(&weight), Some(&values(&bias)), shape);
        flex_tensor(out, [shape.batch, shape.out_channels, shape.height, shape.width])
    }

    fn batch_norm_relu(x: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self> {
        let y = hdnet_kernels::batch_norm_relu::forward(&values(&x), &values(&beta), planes(&x), epsilon);
        flex_tensor(y, x.shape().dims::<4>())
    }

    fn max_pool_2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let [n, c, h, w] = x.shape().dims::<4>();
        flex_tensor(resample::max_pool_2x2(&values(&x), n * c, h, w), [n, c, h / 2, w / 2])
    }

    fn upsample_2x(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let [n, c, h, w] = x.shape().dims::<4>();
        flex_tensor(resample::upsample_2x(&values(&x), n * c, h, w), [n, c, 2 * h, 2 * w])
    }
}

impl CpuKernelGrads for Flex {
    fn conv3x3_input_grad(grad_out: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        let [cout, cin, _, _] = weight.shape().dims::<4>();
        let g = grad_out.shape().dims::<4>();
        let shape = ConvShape { in_channels: cin, ..conv_shape(&g, cout) };
        let grad_x = hdnet_kernels::conv3x3::input_grad(&values(&grad_out), &values(&weight), shape);
        flex_tensor(grad_x, [shape.batch, cin, shape.height, shape.width])
    }

    fn conv3x3_weight_grad(x: FloatTensor<Self>, grad_out: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = conv_shape(&x.shape().dims::<4>(), grad_out.shape().dims::<4>()[1]);
        let grad_w = hdnet_kernels::conv3x3::weight_grad(&values(&x), &values(&grad_out), shape);
        flex_tensor(grad_w, [shape.out_channels, shape.in_channels, 3, 3])
    }

    fn conv3x3_bias_grad(grad_out: FloatTensor<Self>) -> FloatTensor<Self> {
        let p = planes(&grad_out);
        let grad_b = hdnet_kernels::conv3x3::bias_grad(&values(&grad_out), p.batch, p.channels, p.pixels);
        Flex::float_from_data(TensorData::new(grad_b, [p.channels]), &Default::default())
    }

    fn batch_norm_relu_backward(
        x: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> [FloatTensor<Self>; 2] {
        let p = planes(&x);
        let (gx, gb) =
            hdnet_kernels::batch_norm_relu::backward(&values(&x), &values(&beta), &values(&grad), p, epsilon);
        [
            flex_tensor(gx, x.shape().dims::<4>()),
            Flex::float_from_data(TensorData::new(gb, [p.channels]), &Default::default()),
        ]
    }

    fn max_pool_2x2_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let [n, c, h, w] = x.shape().dims::<4>();
        flex_tensor(resample::max_pool_2x2_backward(&values(&x), &values(&grad), n * c, h, w), [n, c, h, w])
    }

    fn upsample_2x_backward(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let [n, c, h, w] = grad.shape().dims::<4>();
        flex_tensor(resample::upsample_2x_backward(&values(&grad), n * c, h / 2, w / 2), [n, c, h / 2, w / 2])
    }
}

/// The gradients of a kernel's N inputs (`None` where not wanted) from its K kept inputs, the
/// output's gradient and which inputs want theirs.
type KernelGrads<B, const N: usize, const K: usize> =
    Box<dyn FnOnce([FloatTensor<B>; K], FloatTensor<B>, [bool; N]) -> [Option<FloatTensor<B>>; N] + Send>;

/// The backward pass of a CPU kernel recorded on the Autodiff backend.
struct KernelBackward<B: Backend, const N: usize, const K: usize>(KernelGrads<B, N, K>);

impl<B: Backend, const N: usize, const K: usize> std::fmt::Debug for KernelBackward<B, N, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KernelBackward")
    }
}

impl<B: Backend, const N: usize, const K: usize> Backward<B, N> for KernelBackward<B, N, K> {
    type State = [NodeId; K];

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let kept = ops.state.map(|id| checkpointer.retrieve_node_output(id));
        let wanted = ops.parents.each_ref().map(Option::is_some);
        for (parent, input_grad) in ops.parents.into_iter().zip((self.0)(kept, grad, wanted)) {
            if let (Some(node), Some(input_grad)) = (parent, input_grad) {
                grads.register::<B>(node.id, input_grad);
            }
        }
    }
}

/// Runs a kernel's `forward` on the inner backend and records its backward pass, which gets the
/// inputs numbered in `keep` (the others are not held until the backward pass).
fn differentiable<B: Backend, C: CheckpointStrategy, const N: usize, const K: usize>(
    inputs: [FloatTensor<Autodiff<B, C>>; N],
    keep: [usize; K],
    forward: impl FnOnce([FloatTensor<B>; N]) -> FloatTensor<B>,
    backward: KernelGrads<B, N, K>,
) -> FloatTensor<Autodiff<B, C>> {
    match KernelBackward(backward).prepare::<C>(inputs.each_ref().map(|x| x.node())).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let state = keep.map(|i| prep.checkpoint(&inputs[i]));
            prep.finish(state, forward(inputs.map(|x| x.into_primitive())))
        }
        OpsKind::UnTracked(prep) => prep.finish(forward(inputs.map(|x| x.into_primitive()))),
    }
}

impl<B: CpuKernels + CpuKernelGrads, C: CheckpointStrategy> CpuKernels for Autodiff<B, C> {
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        differentiable::<B, C, 3, 2>(
            [x, weight, bias],
            [0, 1],
            |[x, weight, bias]| B::conv3x3(x, weight, bias),
            Box::new(|[x, weight], grad, [want_x, want_weight, want_bias]| {
                [
                    want_x.then(|| B::conv3x3_input_grad(grad.clone(), weight)),
                    want_weight.then(|| B::conv3x3_weight_grad(x, grad.clone())),
                    want_bias.then(|| B::conv3x3_bias_grad(grad)),
                ]
            }),
        )
    }

    fn batch_norm_relu(x: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self> {
        differentiable::<B, C, 2, 2>(
            [x, beta],
            [0, 1],
            |[x, beta]| B::batch_norm_relu(x, beta, epsilon),
            Box::new(move |[x, beta], grad, _| B::batch_norm_relu_backward(x, beta, grad, epsilon).map(Some)),
        )
    }

    fn max_pool_2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        differentiable::<B, C, 1, 1>(
            [x],
            [0],
            |[x]| B::max_pool_2x2(x),
            Box::new(|[x], grad, _| [Some(B::max_pool_2x2_backward(x, grad))]),
        )
    }

    fn upsample_2x(x: FloatTensor<Self>) -> FloatTensor<Self> {
        differentiable::<B, C, 1, 0>(
            [x],
            [],
            |[x]| B::upsample_2x(x),
            Box::new(|[], grad, _| [Some(B::upsample_2x_backward(grad))]),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    /// Asserts that the largest difference between `a` and the reference `b` is within
    /// `tolerance` times the largest value of `b`.
    fn assert_within(what: &str, a: Tensor<4>, b: Tensor<4>, tolerance: f32) {
        let scale = b.clone().abs().max().into_scalar::<f32>();
        let diff = (a - b).abs().max().into_scalar::<f32>();
        assert!(diff <= tolerance * scale, "{what}: {diff} of {scale}");
    }

    /// The fast path against Burn's own conv2d (the reference): forward and the three gradients
    /// of a loss that weights every output differently. Tolerance: 1e-5 of the largest value
    /// (float32 sums in a different order). Two sizes: odd (the shifted GEMM) and even with
    /// enough tiles for Winograd.
    #[test]
    fn fast_path_matches_burns_conv2d_forward_and_gradients() {
        for (h, w) in [(13, 11), (48, 44)] {
            conv_matches_burn(h, w);
        }
    }

    fn conv_matches_burn(height: usize, width: usize) {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random([2, 5, height, width], Distribution::Normal(0.0, 1.0), &device);
        let w = Tensor::<4>::random([7, 5, 3, 3], Distribution::Normal(0.0, 0.3), &device);
        let b = Tensor::<1>::random([7], Distribution::Normal(0.0, 1.0), &device);
        let g = Tensor::<4>::random([2, 7, height, width], Distribution::Normal(0.0, 1.0), &device);
        let run = |fast: bool| {
            let (x, w, b) = (x.clone().require_grad(), w.clone().require_grad(), b.clone().require_grad());
            let out = if fast {
                Tensor::from_dispatch(Dispatch::conv3x3(
                    x.clone().into_dispatch(),
                    w.clone().into_dispatch(),
                    b.clone().into_dispatch(),
                ))
            } else {
                conv2d(x.clone(), w.clone(), Some(b.clone()), same_3x3())
            };
            let grads = (out.clone() * g.clone()).sum().backward();
            let grad_b = b.grad(&grads).unwrap().reshape([1, 7, 1, 1]);
            (out.inner(), x.grad(&grads).unwrap(), w.grad(&grads).unwrap(), grad_b)
        };
        let (fast, reference) = (run(true), run(false));
        for (name, a, b) in [
            ("output", fast.0, reference.0),
            ("input gradient", fast.1, reference.1),
            ("weight gradient", fast.2, reference.2),
            ("bias gradient", fast.3, reference.3),
        ] {
            assert_within(&format!("{name} at {height}x{width}"), a, b, 1e-5);
        }
    }

    /// The fused kernel against Burn's batch_norm_train + relu (the reference), forward and
    /// gradients, batch of 2 (statistics per image). Tolerance: 1e-5 of the largest value.
    #[test]
    fn fused_batch_norm_relu_matches_burns_ops_forward_and_gradients() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random([2, 4, 9, 7], Distribution::Normal(0.5, 2.0), &device);
        let beta = Tensor::<1>::random([4], Distribution::Normal(0.0, 0.5), &device);
        let g = Tensor::<4>::random([2, 4, 9, 7], Distribution::Normal(0.0, 1.0), &device);
        let run = |fast: bool| {
            let (x, beta) = (x.clone().require_grad(), beta.clone().require_grad());
            let out = if fast {
                Tensor::from_dispatch(Dispatch::batch_norm_relu(
                    x.clone().into_dispatch(),
                    beta.clone().into_dispatch(),
                    1e-3,
                ))
            } else {
                relu(image_batch_norm(x.clone(), beta.clone(), 1e-3))
            };
            let grads = (out.clone() * g.clone()).sum().backward();
            let grad_beta = beta.grad(&grads).unwrap().reshape([1, 4, 1, 1]);
            (out.inner(), x.grad(&grads).unwrap(), grad_beta)
        };
        let (fast, reference) = (run(true), run(false));
        for (name, a, b) in [
            ("output", fast.0, reference.0),
            ("input gradient", fast.1, reference.1),
            ("beta gradient", fast.2, reference.2),
        ] {
            assert_within(name, a, b, 1e-5);
        }
    }

    /// Pooling and upsampling against Burn's max_pool2d and the reference upsampling built from
    /// Burn ops: forward exactly, gradients to 1e-6 of the largest value.
    #[test]
    fn pooling_and_upsampling_match_the_reference_forward_and_gradients() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::random([2, 3, 8, 6], Distribution::Normal(0.0, 1.0), &device);
        type Op = fn(Tensor<4>) -> Tensor<4>;
        let cases: [(&str, Op, Op, [usize; 4]); 2] = [
            ("max_pool", max_pool_2x2, layers::max_pool_2x2, [2, 3, 4, 3]),
            ("upsample", upsample_2x, layers::upsample_2x_tf_legacy, [2, 3, 16, 12]),
        ];
        for (name, fast, reference, out_shape) in cases {
            let g = Tensor::<4>::random(out_shape, Distribution::Normal(0.0, 1.0), &device);
            let run = |op: Op| {
                let x = x.clone().require_grad();
                let out = op(x.clone());
                let grads = (out.clone() * g.clone()).sum().backward();
                (out.inner(), x.grad(&grads).unwrap())
            };
            let (a, b) = (run(fast), run(reference));
            assert_eq!(
                a.0.clone().try_into_vec_as::<f32>().unwrap(),
                b.0.try_into_vec_as::<f32>().unwrap(),
                "{name} output"
            );
            assert_within(&format!("{name} gradient"), a.1, b.1, 1e-6);
        }
    }

    #[test]
    fn conv3x3_on_flex_equals_conv2d() {
        let device = Device::flex();
        let x = Tensor::<4>::random([1, 2, 4, 4], Distribution::Default, &device);
        let w = Tensor::<4>::random([3, 2, 3, 3], Distribution::Default, &device);
        let b = Tensor::<1>::zeros([3], &device);
        assert_within("conv3x3", conv3x3(x.clone(), w.clone(), b.clone()), conv2d(x, w, Some(b), same_3x3()), 1e-6);
    }
}
