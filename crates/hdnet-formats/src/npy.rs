//! NumPy `.npy` arrays (float32 and friends), read and written with `ndarray-npy`.

use std::path::Path;

use ndarray::{ArrayBase, ArrayD, Data, Dimension};
use ndarray_npy::{ReadableElement, WritableElement};

use crate::{FileError, write_atomic};

/// Reads an `.npy` file of any dimensionality. The header's shape is checked against the bytes
/// the file holds before anything is allocated for it.
pub fn read<T: ReadableElement>(path: impl AsRef<Path>) -> Result<ArrayD<T>, FileError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| FileError::new(path, e))?;
    check_size(&bytes).map_err(|e| FileError::new(path, e))?;
    <ArrayD<T> as ndarray_npy::ReadNpyExt>::read_npy(bytes.as_slice()).map_err(|e| FileError::new(path, e))
}

/// Whether the data after an `.npy` header is exactly what its shape and dtype need (a header
/// claiming more than the file holds would otherwise be allocated first).
fn check_size(bytes: &[u8]) -> Result<(), String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    let malformed = || "not a .npy file (malformed header)".to_string();
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(malformed());
    }
    let (len_bytes, start) = if bytes[6] == 1 { (2, 8) } else { (4, 8) };
    let len_field = bytes.get(start..start + len_bytes).ok_or_else(malformed)?;
    let header_len = len_field.iter().rev().fold(0usize, |n, &b| (n << 8) | usize::from(b));
    let data_start = start + len_bytes + header_len;
    let header = bytes.get(start + len_bytes..data_start).ok_or_else(malformed)?;
    let header = std::str::from_utf8(header).map_err(|_| malformed())?;
    let field = |key: &str| header.split(key).nth(1).map(str::trim_start);
    let descr = field("'descr':")
        .and_then(|d| d.strip_prefix('\''))
        .and_then(|d| d.split('\'').next())
        .ok_or_else(malformed)?;
    let item: usize =
        descr.trim_start_matches(['<', '>', '|', '=']).get(1..).and_then(|n| n.parse().ok()).ok_or_else(malformed)?;
    let shape =
        field("'shape':").and_then(|s| s.strip_prefix('(')).and_then(|s| s.split(')').next()).ok_or_else(malformed)?;
    let mut elements: u128 = 1;
    for dim in shape.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        elements = elements.saturating_mul(dim.parse::<u128>().map_err(|_| malformed())?);
    }
    let needed = elements.saturating_mul(item as u128);
    let present = (bytes.len() - data_start) as u128;
    if needed != present {
        return Err(format!("header claims shape ({shape}) of {descr}, {needed} bytes, but the file holds {present}"));
    }
    Ok(())
}

/// Writes an array (any layout) as an `.npy` file atomically.
pub fn write<T, S, D>(path: impl AsRef<Path>, array: &ArrayBase<S, D>) -> Result<(), FileError>
where
    T: WritableElement,
    S: Data<Elem = T>,
    D: Dimension,
{
    let path = path.as_ref();
    let mut bytes = Vec::new();
    ndarray_npy::WriteNpyExt::write_npy(array, &mut bytes).map_err(|e| FileError::new(path, e))?;
    write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn npy_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let written = ndarray::arr2(&[[1.0f32, 2.0, 3.0], [4.0, 5.0, -6.5]]);
        // Written transposed and back: any layout is written in its logical order.
        super::write(&path, &written.t().to_owned().t()).unwrap();
        let a = super::read::<f32>(&path).unwrap();
        assert_eq!(a.shape(), &[2, 3]);
        assert_eq!(a.iter().copied().collect::<Vec<_>>(), vec![1.0, 2.0, 3.0, 4.0, 5.0, -6.5]);
    }

    /// An `.npy` file of float32 `data` whose header claims `shape`.
    fn npy_with_shape(shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
        header.push_str(&" ".repeat((64 - (10 + header.len() + 1) % 64) % 64));
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        out.extend(data);
        out
    }

    #[test]
    fn a_header_claiming_more_than_the_file_holds_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        std::fs::write(&path, npy_with_shape("(2, 3)", &[0; 24])).unwrap();
        assert_eq!(super::read::<f32>(&path).unwrap().shape(), &[2, 3]);
        // 40 GB claimed over 24 bytes: an error naming the file, not an allocation.
        std::fs::write(&path, npy_with_shape("(100000, 100000)", &[0; 24])).unwrap();
        let err = super::read::<f32>(&path).unwrap_err().to_string();
        assert!(err.contains("a.npy") && err.contains("(100000, 100000)") && err.contains("holds 24"), "{err}");
        std::fs::write(&path, npy_with_shape("(2, 3)", &[0; 20])).unwrap();
        assert!(super::read::<f32>(&path).unwrap_err().to_string().contains("holds 20"));
        // A version-2 header whose 4-byte length field is cut off.
        std::fs::write(&path, b"\x93NUMPY\x02\x00\x10\x00").unwrap();
        assert!(super::read::<f32>(&path).unwrap_err().to_string().contains("not a .npy file"));
        std::fs::write(&path, b"not numpy at all").unwrap();
        assert!(super::read::<f32>(&path).unwrap_err().to_string().contains("not a .npy file"));
    }
}
