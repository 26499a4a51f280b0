//! Deterministic batch sampling and augmentation choices: everything random in training is a
//! pure function of (seed, step), so a run resumed from step N draws exactly what the
//! uninterrupted run drew, with no generator state to save.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::augment::{AugmentChoice, AugmentConfig};

/// Epoch-wise shuffling of `len` items into batches of `batch_size`.
#[derive(Debug, Clone)]
pub struct Sampler {
    pub len: usize,
    pub batch_size: usize,
    pub seed: u64,
}

/// Distinct streams for the permutation and the augmentation of one seed.
const PERMUTATION_STREAM: u64 = 0x5045_524d;
const AUGMENT_STREAM: u64 = 0x4155_474d;

fn rng(seed: u64, stream: u64, a: u64, b: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ stream.rotate_left(32));
    r.set_stream(a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b);
    r
}

impl Sampler {
    /// Item indices of batch `step`: item k of the run is position k mod len of the permutation
    /// of epoch k / len.
    pub fn batch(&self, step: u64) -> Vec<usize> {
        let first = step as usize * self.batch_size;
        let mut cached: Option<(usize, Vec<usize>)> = None;
        (first..first + self.batch_size)
            .map(|k| {
                let epoch = k / self.len;
                if cached.as_ref().is_none_or(|(e, _)| *e != epoch) {
                    cached = Some((epoch, self.permutation(epoch as u64)));
                }
                cached.as_ref().expect("just set").1[k % self.len]
            })
            .collect()
    }

    fn permutation(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len).collect();
        order.shuffle(&mut rng(self.seed, PERMUTATION_STREAM, epoch, 0));
        order
    }

    /// The augmentation of sample `slot` of batch `step`.
    pub fn augmentation(&self, config: &AugmentConfig, step: u64, slot: usize) -> AugmentChoice {
        let mut r = rng(self.seed, AUGMENT_STREAM, step, slot as u64);
        let j = config.color_jitter;
        AugmentChoice {
            flip: r.random::<f32>() < config.flip_probability,
            gain: [0; 3].map(|_| 1.0 + j * (2.0 * r.random::<f32>() - 1.0)),
            bias: [0; 3].map(|_| 100.0 * j * (2.0 * r.random::<f32>() - 1.0)),
            // Drawn last, so that the draws above are those of runs made before it existed.
            drop_iuv: r.random::<f32>() < config.iuv_dropout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_epoch_visits_every_item_once_and_is_reproducible() {
        let s = Sampler { len: 10, batch_size: 4, seed: 42 };
        let run: Vec<usize> = (0..5).flat_map(|step| s.batch(step)).collect(); // 20 items = 2 epochs
        for epoch in run.chunks(10) {
            let mut e = epoch.to_vec();
            e.sort();
            assert_eq!(e, (0..10).collect::<Vec<_>>());
        }
        assert_ne!(&run[..10], &run[10..]);
        assert_eq!(s.batch(3), Sampler { len: 10, batch_size: 4, seed: 42 }.batch(3));
        assert_ne!(s.batch(0), Sampler { len: 10, batch_size: 4, seed: 43 }.batch(0));
    }

    #[test]
    fn augmentation_respects_its_settings() {
        let s = Sampler { len: 10, batch_size: 4, seed: 1 };
        assert_eq!(s.augmentation(&AugmentConfig::default(), 5, 1), AugmentChoice::NONE);
        let config = AugmentConfig { flip_probability: 0.5, color_jitter: 0.2, iuv_dropout: 0.0 };
        let choices: Vec<_> = (0..200).map(|k| s.augmentation(&config, k, 0)).collect();
        let flips = choices.iter().filter(|c| c.flip).count();
        assert!((60..140).contains(&flips), "{flips}");
        assert!(choices.iter().all(|c| !c.drop_iuv));
        // IUV dropout is drawn after the other choices: they stay those of a run without it.
        let dropping = AugmentConfig { iuv_dropout: 0.25, ..config };
        let with_dropout: Vec<_> = (0..200).map(|k| s.augmentation(&dropping, k, 0)).collect();
        let drops = with_dropout.iter().filter(|c| c.drop_iuv).count();
        assert!((30..70).contains(&drops), "{drops}");
        for (a, b) in choices.iter().zip(&with_dropout) {
            assert_eq!((a.flip, a.gain, a.bias), (b.flip, b.gain, b.bias));
        }
        assert!(choices.iter().all(|c| c.gain.iter().all(|g| (0.8..=1.2).contains(g))));
        assert_eq!(s.augmentation(&config, 7, 2), s.augmentation(&config, 7, 2));
    }
}
