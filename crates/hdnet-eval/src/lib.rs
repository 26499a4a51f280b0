//! Accuracy of predicted depth and normals against ground truth, inside a mask: depth RMSE and
//! AbsRel after a per-image least-squares scale-and-shift alignment (monocular depth is known
//! only up to those), raw RMSE, and normal angular errors ([`metrics`]); per image, per body
//! part, aggregated and written as reports, with the baselines ([`evaluation`]); and, for real
//! photos without ground truth, the joints' front-to-back order against a 3D pose model ([`joints`]).

pub mod evaluation;
pub mod joints;
pub mod metrics;
