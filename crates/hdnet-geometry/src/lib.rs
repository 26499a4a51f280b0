//! HDNet's camera model and depth-map geometry on plain arrays. The differentiable (Burn)
//! geometry builds on the same [`Camera`].

pub mod camera;
pub mod integrate;
pub mod normals;
pub mod upright;

pub use camera::{Camera, median};
pub use integrate::{Integration, integrate_normals};
pub use normals::normals_of_depth;
pub use upright::Upright;
