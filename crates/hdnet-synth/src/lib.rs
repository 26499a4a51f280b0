//! Synthetic labelled people: a random Anny body (phenotype, a perturbed pose), seen by the
//! original camera at about 4 m, rasterised into HDNet's labelled layout with exact depth, normals,
//! mask and DensePose-style IUV.
//!
//! This is the first stage of the generator: bodies coloured by region, the asset's skirt and hair
//! meshes on some people, Lambertian shading with a random light, 2x2-supersampled images.
//! Procedural garments with wrinkles, textures, dance-like motion and videos are still to come.

pub mod person;

pub use person::{Frame, Material, Person, render_person, sample_person, write_labelled};
