//! The ML-free formats of hdnet: everything that reads or writes files without needing Burn.
//!
//! - [`tf_checkpoint`]: TensorFlow 1 V2 checkpoints (the authors' released weights).
//! - [`images`]: the original test-data PNGs (`NAME_img.png`, `NAME_mask.png`, `NAME_dp.png`).
//! - [`text`]: the original's text matrices (`%.5f`, space or comma separated).
//! - [`mesh`]: the original depth-to-mesh rule (OBJ) and coloured PLY meshes.
//! - [`glb`]: glTF binary meshes.
//! - [`visual`]: the original `_results.png` panel (input | "hot" depth | normal colours).
//! - [`npy`]: NumPy arrays.
//! - [`densepose`]: DensePose's body parts.
//! - [`tflite`]: TensorFlow Lite models (MediaPipe's segmentation and pose models).

pub mod correspondences;
pub mod crop;
pub mod densepose;
pub mod glb;
pub mod images;
pub mod item;
pub mod mesh;
pub mod npy;
pub mod text;
pub mod tf_checkpoint;
pub mod tflite;
pub mod visual;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use ndarray::Array2;

/// A file that could not be read or written, with the reason. The message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {what}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    pub what: String,
}

impl FileError {
    pub fn new(path: impl AsRef<Path>, what: impl std::fmt::Display) -> Self {
        Self { path: path.as_ref().to_path_buf(), what: what.to_string() }
    }
}

/// An image's values in row-major order, as the plain-array geometry (`hdnet-geometry`) takes
/// them: borrowed when the array is laid out so already.
pub fn row_major(image: &Array2<f32>) -> Cow<'_, [f32]> {
    image.as_slice().map_or_else(|| Cow::Owned(image.iter().copied().collect()), Cow::Borrowed)
}

/// Writes `bytes` to `path` through a temporary file in the same folder, so that a crash never
/// leaves a half-written file under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| FileError::new(path, "not a file path"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    // A failed write (a full disk) leaves no temporary file, and the message names the file meant.
    std::fs::write(&tmp, bytes).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        FileError::new(path, e)
    })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        FileError::new(path, e)
    })
}
