//! NumPy `.npy` arrays (float32 and friends), read and written with `ndarray-npy`.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{ReadableElement, WritableElement};

use crate::{FileError, write_atomic};

/// Reads an `.npy` file of any dimensionality.
pub fn read<T: ReadableElement>(path: impl AsRef<Path>) -> Result<ArrayD<T>, FileError> {
    let path = path.as_ref();
    ndarray_npy::read_npy::<_, ArrayD<T>>(path).map_err(|e| FileError::new(path, e))
}

/// Writes an `.npy` file atomically.
pub fn write<T: WritableElement + Clone>(
    path: impl AsRef<Path>,
    shape: &[usize],
    values: &[T],
) -> Result<(), FileError> {
    let path = path.as_ref();
    let array = ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).map_err(|e| FileError::new(path, e))?;
    let mut bytes = Vec::new();
    ndarray_npy::WriteNpyExt::write_npy(&array, &mut bytes).map_err(|e| FileError::new(path, e))?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn npy_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        super::write(&path, &[2, 3], &[1.0f32, 2.0, 3.0, 4.0, 5.0, -6.5]).unwrap();
        let a = super::read::<f32>(&path).unwrap();
        assert_eq!(a.shape(), &[2, 3]);
        assert_eq!(a.iter().copied().collect::<Vec<_>>(), vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]);
    }
}
