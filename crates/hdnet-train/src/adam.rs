//! The original's optimizer: TF1's Adam (epsilon added to the uncorrected sqrt(v)). On the CPU one
//! fused pass per weight ([`hdnet_kernels::adam`], a backend extension of Flex) replaces a dozen
//! tensor operations over every weight; other devices and dtypes take Burn's tensor operations.
//! Its state is Burn's `AdamState`, so checkpoints keep their format.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, ExtensionType, Flex, backend_extension};
use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::prelude::*;
use hdnet_kernels::adam::AdamStep;
use hdnet_model::cpu_kernels::{on_cpu_kernels, values};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tf1Adam {
    pub beta_1: f32,
    pub beta_2: f32,
    pub epsilon: f32,
}

impl Optimizer for Tf1Adam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        learning_rate: LearningRate,
        param: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (time, m, v) = match state {
            Some(AdamState { momentum }) => (momentum.time + 1, momentum.moment_1, momentum.moment_2),
            None => (1, grad.zeros_like(), grad.zeros_like()),
        };
        let step = AdamStep {
            learning_rate,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            time: time as i32,
        };
        let (param, m, v) = adam_update(param, grad, m, v, step);
        (param, Some(AdamState::new(AdaptiveMomentumState::new(time, m, v))))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamState::new(state.momentum.to_device(device))
    }
}

/// One Adam step of a parameter: returns the updated parameter, first and second moments.
/// Optimizers see the parameters' inner (untracked) tensors, so no Autodiff version is needed.
fn adam_update<const D: usize>(
    param: Tensor<D>,
    grad: Tensor<D>,
    m: Tensor<D>,
    v: Tensor<D>,
    step: AdamStep,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let dtypes = [param.dtype(), grad.dtype(), m.dtype(), v.dtype()];
    if on_cpu_kernels(&dtypes, &param.device()) {
        let state = AdamTensors { param: param.into_dispatch(), m: m.into_dispatch(), v: v.into_dispatch() };
        let AdamTensors { param, m, v } = Dispatch::adam_update(state, grad.into_dispatch(), step);
        return (Tensor::from_dispatch(param), Tensor::from_dispatch(m), Tensor::from_dispatch(v));
    }
    let m = m.clone() + (grad.clone() - m).mul_scalar(1.0 - step.beta_1);
    let v = v.clone() + (grad.square() - v).mul_scalar(1.0 - step.beta_2);
    let delta = m.clone().mul_scalar(step.corrected_learning_rate()) / v.clone().sqrt().add_scalar(step.epsilon);
    (param - delta, m, v)
}

/// A parameter with its first and second moments.
#[derive(ExtensionType)]
pub struct AdamTensors<B: Backend> {
    pub param: FloatTensor<B>,
    pub m: FloatTensor<B>,
    pub v: FloatTensor<B>,
}

#[backend_extension(Flex)]
pub trait FusedAdam: Backend {
    fn adam_update(
        #[extension_type] state: AdamTensors<Self>,
        grad: FloatTensor<Self>,
        step: AdamStep,
    ) -> AdamTensors<Self>;
}

impl FusedAdam for Flex {
    /// In place where the parameter and moments are not shared (copied on write otherwise).
    fn adam_update(state: AdamTensors<Self>, grad: FloatTensor<Self>, step: AdamStep) -> AdamTensors<Self> {
        let [mut param, mut m, mut v] = [state.param, state.m, state.v].map(whole);
        hdnet_kernels::adam::update(param.storage_mut(), &values(&grad), m.storage_mut(), v.storage_mut(), step);
        AdamTensors { param, m, v }
    }
}

/// `t` as a tensor whose storage is exactly its elements in standard order.
fn whole(t: FloatTensor<Flex>) -> FloatTensor<Flex> {
    let exact = t.as_slice::<f32>().is_some_and(|s| t.is_contiguous() && s.len() == t.storage::<f32>().len());
    if exact { t } else { t.to_contiguous() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{DType, Distribution};

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
}
