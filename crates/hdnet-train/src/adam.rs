//! The original's optimizer: TF1's Adam (epsilon added to the uncorrected sqrt(v)), one fused
//! pass per weight on the CPU. Its state is Burn's `AdamState`, so checkpoints keep their format.

use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::prelude::*;
use hdnet_model::cpu_kernels::{AdamStep, adam_update};

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
