//! Images copied into zero-bordered planes, the layout every shifted product reads from.

use rayon::prelude::*;

/// A batch of images [N, C, H, W] with one zero pixel around each plane, rows `w + 2` wide,
/// and zero slack after each plane so that the furthest shifted read stays inside it.
pub struct Padded {
    pub data: Vec<f32>,
    /// Elements from one channel plane to the next.
    pub plane: usize,
    /// Elements from one image to the next.
    pub image: usize,
    height: usize,
    width: usize,
}

impl Padded {
    /// `x` [N, C, H, W] with a zero border; each plane `plane_len` long (at least
    /// `(h + 2) * (w + 2) + 2`, more when the products read further).
    pub fn batch(x: &[f32], batch: usize, channels: usize, height: usize, width: usize, plane_len: usize) -> Self {
        let wp = width + 2;
        assert!(plane_len >= (height + 2) * wp + 2);
        let mut data = crate::zeroed(batch * channels * plane_len);
        data.par_chunks_exact_mut(plane_len).zip(x.par_chunks_exact(height * width)).for_each(|(dst, src)| {
            for (y, row) in src.chunks_exact(width).enumerate() {
                let start = (y + 1) * wp + 1;
                dst[start..start + width].copy_from_slice(row);
            }
        });
        Self { data, plane: plane_len, image: channels * plane_len, height, width }
    }

    /// `x` [N, C, H, W] on rows `w + 2` wide with two zero columns at the end of each row and
    /// no border: the layout of an output before its junk columns are dropped.
    pub fn widened(x: &[f32], batch: usize, channels: usize, height: usize, width: usize) -> Self {
        let wp = width + 2;
        let plane = height * wp;
        let mut data = crate::zeroed(batch * channels * plane);
        data.par_chunks_exact_mut(plane).zip(x.par_chunks_exact(height * width)).for_each(|(dst, src)| {
            for (d, s) in dst.chunks_exact_mut(wp).zip(src.chunks_exact(width)) {
                d[..width].copy_from_slice(s);
            }
        });
        Self { data, plane, image: channels * plane, height, width }
    }

    /// Width of a padded row.
    pub fn width(&self) -> usize {
        self.width + 2
    }

    /// Output positions on padded rows: `h * (w + 2)`.
    pub fn row_span(&self) -> usize {
        self.height * self.width()
    }

    /// Offset of tap (dy, dx) = (tap / 3, tap % 3) relative to the output position.
    pub fn tap_offset(&self, tap: usize) -> usize {
        (tap / 3) * self.width() + tap % 3
    }
}
