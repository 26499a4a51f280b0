//! HDNet's camera model on plain arrays. The differentiable (Burn) geometry builds on the same
//! [`Camera`].

pub mod camera;

pub use camera::Camera;
