//! A z-buffer rasteriser for HDNet's synthetic data: triangle meshes in camera space, seen
//! through the original's camera and crop ([`hdnet_geometry::Camera`]), give per-pixel depth
//! (metres along the optical axis, the depth convention of HDNet), the visible triangle and its
//! perspective-correct barycentric coordinates, from which any vertex attribute (normals, IUV,
//! surface points for exact correspondences) is interpolated; [`light`] adds shadow maps and
//! ambient occlusion.

pub mod light;
pub mod raster;
pub mod turntable;

pub use raster::{Raster, rasterize, vertex_normals};
pub use turntable::{CLAY, turntable};
