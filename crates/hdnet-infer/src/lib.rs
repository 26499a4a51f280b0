//! HDNet on photos of any size and on the original test layout (`hdnet infer`, and the photo
//! depth `hdnet eval --photos` scores): [`photo`] turns a photo into the networks' input and
//! knows its camera; [`outputs`] writes an image's results.

pub mod outputs;
pub mod photo;
