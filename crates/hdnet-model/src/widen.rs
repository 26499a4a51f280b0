//! A trained hourglass made wider without changing what it computes (Net2WiderNet, Chen,
//! Goodfellow & Shlens, ICLR 2016), so that training goes on from it with more capacity instead
//! of starting a wide network from scratch.
//!
//! Each new channel of a layer copies an old one (its kernel, bias and shift); the per-image
//! batch norm gives the copies the same output, so the next layer splits each old input weight
//! between the copies, at random: the sums, and the network's output, stay as they were, while
//! the copies get different gradients and grow apart in training.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::hourglass::{Hourglass, HourglassConfig, NUM_CONV_BN, NetKind, ParamSpec, Role, parameter_values};

/// The blocks whose input is `[upsampled previous block, skip]`, with the block of the skip
/// (`Hourglass::forward_timed`'s `up`).
const CONCAT_SKIPS: [(usize, usize); 4] = [(9, 5), (11, 4), (13, 3), (15, 2)];

impl Hourglass {
    /// This network of `kind` at base width `w0` (widths w0..16 w0), computing the same function;
    /// `seed` draws the splits of the copied channels' outgoing weights. An error when `w0` is
    /// narrower than the network or its widths are not the standard doubling ones.
    pub fn widened(&self, kind: NetKind, w0: usize, seed: u64) -> Result<Hourglass, String> {
        let old = self.config(kind);
        let standard = HourglassConfig::new(kind, old.widths[0]).widths;
        if old.widths != standard {
            return Err(format!("widths {:?} are not the standard doubling ones", old.widths));
        }
        if w0 < old.widths[0] {
            return Err(format!("the network is width {}, wider than {w0}: it can only be widened", old.widths[0]));
        }
        let new = HourglassConfig { widths: HourglassConfig::new(kind, w0).widths, ..old };
        // Which old channel each new output channel of conv1..conv17 copies.
        let outputs: Vec<Vec<usize>> =
            old.conv_channels().iter().zip(new.conv_channels()).map(|(&(_, o), (_, n))| copies(o, n)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut values = parameter_values(self).into_iter().map(|(_, v)| v);
        let mut widen = |spec: &ParamSpec| -> Result<Vec<f32>, ()> {
            let values = values.next().ok_or(())?;
            let layer = spec.layer - 1;
            let out = match outputs.get(layer) {
                Some(copied) => copied.clone(),
                None => (0..old.out_channels).collect(),
            };
            Ok(match spec.role {
                Role::Bias | Role::Beta => out.iter().map(|&c| values[c]).collect(),
                Role::Weight => {
                    let inputs = input_copies(&old, &outputs, layer);
                    split_kernel(&values, &out, &inputs, spec.shape[2] * spec.shape[3], &mut rng)
                }
            })
        };
        new.build(&self.device(), &mut widen).map_err(|()| "the network's parameters do not match its shape".into())
    }
}

/// The old input channel that each new input channel of block `layer` (the head at
/// [`NUM_CONV_BN`]) reads, given the old channel each block's new outputs copy (`outputs`).
fn input_copies(old: &HourglassConfig, outputs: &[Vec<usize>], layer: usize) -> Vec<usize> {
    match layer {
        0 => (0..old.in_channels).collect(),
        NUM_CONV_BN => outputs[NUM_CONV_BN - 1].clone(),
        _ => match CONCAT_SKIPS.iter().find(|&&(block, _)| block == layer) {
            Some(&(_, skip)) => {
                let offset = old.conv_channels()[layer - 1].1;
                outputs[layer - 1].iter().copied().chain(outputs[skip].iter().map(|c| c + offset)).collect()
            }
            None => outputs[layer - 1].clone(),
        },
    }
}

/// The old channel (of `old`) that each of `new` channels copies: every old channel once, then
/// the first ones again.
fn copies(old: usize, new: usize) -> Vec<usize> {
    (0..new).map(|j| j % old).collect()
}

/// A kernel `[old out, old in, taps]` (row-major) widened to `[out.len(), inputs.len(), taps]`:
/// each new output channel takes its old channel's kernel, and each old input's weight is split
/// between that input's copies in random shares that sum to one.
fn split_kernel(kernel: &[f32], out: &[usize], inputs: &[usize], taps: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let old_inputs = inputs.iter().max().map_or(0, |&c| c + 1);
    let mut widened = vec![0.0; out.len() * inputs.len() * taps];
    for (j, &from) in out.iter().enumerate() {
        for tap in 0..taps {
            let shares: Vec<f32> = inputs.iter().map(|_| rng.random_range(0.5..1.5)).collect();
            let mut totals = vec![0.0; old_inputs];
            for (&c, &s) in inputs.iter().zip(&shares) {
                totals[c] += s;
            }
            for (i, (&c, &s)) in inputs.iter().zip(&shares).enumerate() {
                widened[(j * inputs.len() + i) * taps + tap] =
                    kernel[(from * old_inputs + c) * taps + tap] * s / totals[c];
            }
        }
    }
    widened
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    use super::*;
    use crate::device::Device;

    #[test]
    fn a_widened_network_computes_what_it_computed() {
        let device = Device::flex();
        let narrow = HourglassConfig::new(NetKind::Depth, 2).init(&device, 4);
        let wide = narrow.widened(NetKind::Depth, 3, 9).unwrap();
        assert_eq!(wide.config(NetKind::Depth), HourglassConfig::new(NetKind::Depth, 3));
        let x = Tensor::<4>::random([2, 9, 32, 48], burn::tensor::Distribution::Uniform(0.0, 255.0), &device);
        let (a, b) = (narrow.forward(x.clone()), wide.forward(x));
        let (a, b) = (a.try_into_vec_as::<f32>().unwrap(), b.try_into_vec_as::<f32>().unwrap());
        let largest = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        let off = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(largest > 0.1 && off <= 1e-4 * largest, "off by {off} where outputs reach {largest}");
    }

    #[test]
    fn copies_get_different_shares_of_their_outgoing_weights() {
        // conv2 reads conv1's 3 channels (2 old ones, the first copied): the copies' weights
        // differ but add up to the old weight.
        let narrow = HourglassConfig::new(NetKind::Normal, 2).init(&Device::flex(), 1);
        let wide = narrow.widened(NetKind::Normal, 3, 2).unwrap();
        let (old, new) = (&parameter_values(&narrow)[3].1, &parameter_values(&wide)[3].1);
        let old_at = |out: usize, input: usize| (out * 2 + input) * 9;
        let new_at = |out: usize, input: usize| (out * 3 + input) * 9;
        let (first, copy, whole) = (new[new_at(0, 0)], new[new_at(0, 2)], old[old_at(0, 0)]);
        assert!((first + copy - whole).abs() <= 1e-6 * whole.abs(), "{first} + {copy} != {whole}");
        assert!((first - copy).abs() > 1e-3 * whole.abs(), "the copies' shares are equal: {first} {copy}");
        assert_eq!(new[new_at(0, 1)], old[old_at(0, 1)], "an input without copies keeps its weight");
    }

    #[test]
    fn narrowing_is_refused() {
        let net = HourglassConfig::new(NetKind::Normal, 4).init(&Device::flex(), 1);
        assert!(net.widened(NetKind::Normal, 2, 0).unwrap_err().contains("width 4"));
        assert_eq!(net.widened(NetKind::Normal, 4, 0).unwrap().config(NetKind::Normal), net.config(NetKind::Normal));
    }
}
