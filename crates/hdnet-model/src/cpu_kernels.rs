//! The hourglass's operations (3x3 convolution, per-image batch norm + ReLU, max pooling,
//! TF1-legacy upsampling): hdnet-kernels' CPU kernels on the Flex backend (forward and backward, registered as a Burn
//! backend extension so that training uses them too), Burn's own operations on every other
//! device (GPUs) and dtype, which also serve as the reference the kernels are tested against.
//! Adam's update of the weights ([`adam_update`]) takes the same route: one fused pass on the
//! CPU instead of a dozen tensor operations over every weight.

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
pub use hdnet_kernels::adam::AdamStep;
use hdnet_kernels::batch_norm_relu::Planes;
use hdnet_kernels::conv3x3::ConvShape;
use hdnet_kernels::resample;

use crate::layers::{self, image_batch_norm};

/// SAME padding, stride 1: the only 3x3 convolution HDNet has.
fn same_3x3() -> ConvOptions<2> {
    ConvOptions::new([1, 1], [1, 1], [1, 1], 1)
}

/// Whether the CPU kernels can take tensors: f32 on the Flex backend.
fn on_cpu_kernels(tensors: &[DType], device: &Device) -> bool {
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

/// One Adam step of a parameter (TF1's `ApplyAdam`, see [`hdnet_kernels::adam`]): returns the
/// updated parameter, first and second moments.
pub fn adam_update<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    m: Tensor<D>,
    v: Tensor<D>,
    step: AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let dtypes = [param.dtype(), grad.dtype(), m.dtype(), v.dtype()];
    if on_cpu_kernels(&dtypes, &param.device()) {
        let (param, m, v) = Dispatch::adam_update(
            param.into_dispatch(),
            grad.into_dispatch(),
            m.into_dispatch(),
            v.into_dispatch(),
            step,
        );
        return (Tensor::from_dispatch(param), Tensor::from_dispatch(m), Tensor::from_dispatch(v));
    }
    let m = m.clone() + (grad.clone() - m).mul_scalar(1.0 - step.beta_1);
    let v = v.clone() + (grad.square() - v).mul_scalar(1.0 - step.beta_2);
    let delta = m.clone().mul_scalar(step.corrected_learning_rate()) / v.clone().sqrt().add_scalar(step.epsilon);
    (param - delta, m, v)
}

#[backend_extension(Flex, Autodiff)]
pub trait CpuKernels: Backend {
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self>;
    fn conv3x3_input_grad(grad_out: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self>;
    fn conv3x3_weight_grad(x: FloatTensor<Self>, grad_out: FloatTensor<Self>) -> FloatTensor<Self>;
    fn conv3x3_bias_grad(grad_out: FloatTensor<Self>) -> FloatTensor<Self>;
    fn batch_norm_relu(x: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self>;
    /// Gradients with respect to x and beta.
    fn batch_norm_relu_backward(
        x: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
    fn max_pool_2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;
    fn max_pool_2x2_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
    fn upsample_2x(x: FloatTensor<Self>) -> FloatTensor<Self>;
    fn upsample_2x_backward(grad: FloatTensor<Self>) -> FloatTensor<Self>;
    fn adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
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
fn values(t: &FloatTensor<Flex>) -> std::borrow::Cow<'_, [f32]> {
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

    fn batch_norm_relu(x: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self> {
        let y = hdnet_kernels::batch_norm_relu::forward(&values(&x), &values(&beta), planes(&x), epsilon);
        flex_tensor(y, x.shape().dims::<4>())
    }

    fn batch_norm_relu_backward(
        x: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let p = planes(&x);
        let (gx, gb) =
            hdnet_kernels::batch_norm_relu::backward(&values(&x), &values(&beta), &values(&grad), p, epsilon);
        let gb = Flex::float_from_data(TensorData::new(gb, [p.channels]), &Default::default());
        (flex_tensor(gx, x.shape().dims::<4>()), gb)
    }

    fn max_pool_2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let [n, c, h, w] = x.shape().dims::<4>();
        flex_tensor(resample::max_pool_2x2(&values(&x), n * c, h, w), [n, c, h / 2, w / 2])
    }

    fn max_pool_2x2_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let [n, c, h, w] = x.shape().dims::<4>();
        flex_tensor(resample::max_pool_2x2_backward(&values(&x), &values(&grad), n * c, h, w), [n, c, h, w])
    }

    fn upsample_2x(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let [n, c, h, w] = x.shape().dims::<4>();
        flex_tensor(resample::upsample_2x(&values(&x), n * c, h, w), [n, c, 2 * h, 2 * w])
    }

    fn upsample_2x_backward(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let [n, c, h, w] = grad.shape().dims::<4>();
        flex_tensor(resample::upsample_2x_backward(&values(&grad), n * c, h / 2, w / 2), [n, c, h / 2, w / 2])
    }

    /// In place where the parameter and moments are not shared (copied on write otherwise).
    fn adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (mut param, mut m, mut v) = (whole(param), whole(m), whole(v));
        hdnet_kernels::adam::update(param.storage_mut(), &values(&grad), m.storage_mut(), v.storage_mut(), step);
        (param, m, v)
    }
}

/// `t` as a tensor whose storage is exactly its elements in standard order.
fn whole(t: FloatTensor<Flex>) -> FloatTensor<Flex> {
    let exact = t.as_slice::<f32>().is_some_and(|s| t.is_contiguous() && s.len() == t.storage::<f32>().len());
    if exact { t } else { t.to_contiguous() }
}

/// Operations of the Autodiff backend that run on the inner backend untracked: each takes and
/// returns float tensors, unwrapped on the way in and wrapped on the way out.
macro_rules! on_inner_backend {
    ($(fn $name:ident($($arg:ident),*);)*) => {
        $(fn $name($($arg: FloatTensor<Self>),*) -> FloatTensor<Self> {
            <FloatTensor<Self>>::new(B::$name($($arg.into_primitive()),*))
        })*
    };
}

impl<B: CpuKernels, C: CheckpointStrategy> CpuKernels for Autodiff<B, C> {
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Conv3x3Backward;

        impl<B: CpuKernels> Backward<B, 3> for Conv3x3Backward {
            type State = (NodeId, NodeId);

            fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
                let [node_x, node_weight, node_bias] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, weight_state) = ops.state;
                let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_state);
                let weight: FloatTensor<B> = checkpointer.retrieve_node_output(weight_state);
                if let Some(node) = node_bias {
                    grads.register::<B>(node.id, B::conv3x3_bias_grad(grad.clone()));
                }
                if let Some(node) = node_weight {
                    grads.register::<B>(node.id, B::conv3x3_weight_grad(x, grad.clone()));
                }
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::conv3x3_input_grad(grad, weight));
                }
            }
        }

        match Conv3x3Backward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight));
                prep.finish(state, B::conv3x3(x.into_primitive(), weight.into_primitive(), bias.into_primitive()))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::conv3x3(x.into_primitive(), weight.into_primitive(), bias.into_primitive()))
            }
        }
    }

    fn batch_norm_relu(x: FloatTensor<Self>, beta: FloatTensor<Self>, epsilon: f64) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct BatchNormReluBackward;

        impl<B: CpuKernels> Backward<B, 2> for BatchNormReluBackward {
            type State = (NodeId, NodeId, f64);

            fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
                let [node_x, node_beta] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let (x_state, beta_state, epsilon) = ops.state;
                let x: FloatTensor<B> = checkpointer.retrieve_node_output(x_state);
                let beta: FloatTensor<B> = checkpointer.retrieve_node_output(beta_state);
                let (grad_x, grad_beta) = B::batch_norm_relu_backward(x, beta, grad, epsilon);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, grad_x);
                }
                if let Some(node) = node_beta {
                    grads.register::<B>(node.id, grad_beta);
                }
            }
        }

        match BatchNormReluBackward.prepare::<C>([x.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&beta), epsilon);
                prep.finish(state, B::batch_norm_relu(x.into_primitive(), beta.into_primitive(), epsilon))
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::batch_norm_relu(x.into_primitive(), beta.into_primitive(), epsilon))
            }
        }
    }

    fn batch_norm_relu_backward(
        x: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (gx, gb) =
            B::batch_norm_relu_backward(x.into_primitive(), beta.into_primitive(), grad.into_primitive(), epsilon);
        (<FloatTensor<Self>>::new(gx), <FloatTensor<Self>>::new(gb))
    }

    fn max_pool_2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct MaxPoolBackward;

        impl<B: CpuKernels> Backward<B, 1> for MaxPoolBackward {
            type State = NodeId;

            fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
                let [node_x] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                let x: FloatTensor<B> = checkpointer.retrieve_node_output(ops.state);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::max_pool_2x2_backward(x, grad));
                }
            }
        }

        match MaxPoolBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = prep.checkpoint(&x);
                prep.finish(state, B::max_pool_2x2(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::max_pool_2x2(x.into_primitive())),
        }
    }

    fn upsample_2x(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct UpsampleBackward;

        impl<B: CpuKernels> Backward<B, 1> for UpsampleBackward {
            type State = ();

            fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
                let [node_x] = ops.parents;
                let grad = grads.consume::<B>(&ops.node);
                if let Some(node) = node_x {
                    grads.register::<B>(node.id, B::upsample_2x_backward(grad));
                }
            }
        }

        match UpsampleBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((), B::upsample_2x(x.into_primitive())),
            OpsKind::UnTracked(prep) => prep.finish(B::upsample_2x(x.into_primitive())),
        }
    }

    // The gradients themselves are not differentiated again (no second-order training here):
    // they are computed on the inner backend and enter the graph as constants.
    on_inner_backend! {
        fn max_pool_2x2_backward(x, grad);
        fn upsample_2x_backward(grad);
        fn conv3x3_input_grad(grad_out, weight);
        fn conv3x3_weight_grad(x, grad_out);
        fn conv3x3_bias_grad(grad_out);
    }

    // Optimizers work on the parameters' inner tensors; an update is never differentiated.
    fn adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        step: AdamStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (param, m, v) =
            B::adam_update(param.into_primitive(), grad.into_primitive(), m.into_primitive(), v.into_primitive(), step);
        (<FloatTensor<Self>>::new(param), <FloatTensor<Self>>::new(m), <FloatTensor<Self>>::new(v))
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

    /// The fused in-place update against the same recurrences in Burn tensor operations (the path
    /// of every other device, taken here for f64), two steps, with the parameter shared as the
    /// trainer shares it: 1e-6 of the largest value. The shared parameter stays untouched.
    #[test]
    fn fused_adam_update_matches_burns_ops() {
        let device = Device::flex();
        let dist = Distribution::Normal(0.0, 1.0);
        let [param, g1, g2] = [0; 3].map(|_| Tensor::<3>::random([6, 7, 8], dist, &device));
        let run = |dtype: DType| {
            let cast = |t: &Tensor<3>| t.clone().cast(dtype);
            let (mut p, mut m, mut v) = (cast(&param), cast(&param).zeros_like(), cast(&param).zeros_like());
            let kept = p.clone();
            for (time, g) in [(1, &g1), (2, &g2)] {
                let step = AdamStep { learning_rate: 0.01, beta_1: 0.9, beta_2: 0.999, epsilon: 1e-3, time };
                (p, m, v) = adam_update(p, cast(g), m, v, step);
            }
            assert_eq!(kept.into_data(), cast(&param).into_data(), "the shared parameter changed");
            [p, m, v].map(|t| t.cast(DType::F32))
        };
        let (fast, reference) = (run(DType::F32), run(DType::F64));
        for ((name, a), b) in ["param", "m", "v"].into_iter().zip(fast).zip(reference) {
            let scale = b.clone().abs().max().into_scalar::<f32>();
            let diff = (a - b).abs().max().into_scalar::<f32>();
            assert!(diff <= 1e-6 * scale, "{name}: {diff} of {scale}");
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
