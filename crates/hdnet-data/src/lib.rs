//! Training data of HDNet, without Burn: the original folder layouts (labelled renders with ground
//! truth, unlabelled dance videos with correspondences) in the original text form and hdnet's
//! binary form ([`layout`]), DensePose IUV images ([`iuv`]), correspondences between frames made
//! from IUV ([`correspond`]), geometry-consistent augmentation ([`augment`]) and dataset
//! validation ([`check`]).

pub mod augment;
pub mod check;
pub mod correspond;
pub mod iuv;
pub mod layout;
pub mod sampler;
