//! The products of the shifted-GEMM convolution, and how their work is cut into tiles.

use super::padded::Padded;
use super::product::product;

/// Output columns per tile, roughly: large enough for the gemm kernels to run at speed, small
/// enough that a tile's accumulator stays in L2 across its nine taps.
const TARGET_TILE_COLUMNS: usize = 2048;
/// Tiles per thread wanted for load balance.
const TILES_PER_THREAD: usize = 4;

/// How one convolution's output [N][Cout][positions on padded rows] is cut into tiles:
/// each tile is whole padded rows (`rows_per_chunk` of them) of a block of output channels
/// of one image, stored contiguously as [channel block rows][chunk columns].
#[derive(Debug, Clone, Copy)]
pub struct Chunks {
    pub out_channels: usize,
    pub padded_width: usize,
    pub rows_per_chunk: usize,
    pub chunks: usize,
    pub channel_block: usize,
    pub channel_blocks: usize,
}

impl Chunks {
    pub fn plan(out_channels: usize, height: usize, width: usize, batch: usize) -> Self {
        let padded_width = width + 2;
        // as many chunks as the target size asks for, then rows shared evenly among them
        let chunks = height.div_ceil((TARGET_TILE_COLUMNS / padded_width).clamp(1, height));
        let rows_per_chunk = height.div_ceil(chunks);
        let wanted = TILES_PER_THREAD * rayon::current_num_threads().max(1);
        // Small images (the hourglass's waist) have few chunks but many channels: cut those too,
        // in blocks of at least 16 channels.
        let max_blocks = out_channels.div_ceil(16);
        let channel_blocks = wanted.div_ceil(batch * chunks).clamp(1, max_blocks);
        let channel_block = out_channels.div_ceil(channel_blocks);
        let channel_blocks = out_channels.div_ceil(channel_block);
        Self { out_channels, padded_width, rows_per_chunk, chunks, channel_block, channel_blocks }
    }

    pub fn chunk_columns(&self) -> usize {
        self.rows_per_chunk * self.padded_width
    }

    pub fn tile_len(&self) -> usize {
        self.channel_block * self.chunk_columns()
    }

    /// Plane length the padded input needs so that the last chunk's furthest tap stays inside.
    pub fn plane_len(&self, height: usize) -> usize {
        let columns = self.chunks * self.chunk_columns();
        (columns + 2 * self.padded_width + 2).max((height + 2) * self.padded_width + 2)
    }

    pub fn tiles_per_image(&self) -> usize {
        self.chunks * self.channel_blocks
    }

    /// Offset in the tiled output of (image, channel, padded row y).
    pub fn locate(&self, image: usize, channel: usize, y: usize) -> usize {
        let (chunk, row) = (y / self.rows_per_chunk, y % self.rows_per_chunk);
        let (block, r) = (channel / self.channel_block, channel % self.channel_block);
        let tile = (image * self.chunks + chunk) * self.channel_blocks + block;
        tile * self.tile_len() + r * self.chunk_columns() + row * self.padded_width
    }
}

/// The 3x3 weights [Cout, Cin, 3, 3] seen as nine matrices, read in place through strides
/// (gemm packs its operands anyway, so no rearranged copy is needed).
pub struct Taps<'a> {
    weight: &'a [f32],
    /// Strides of (row, column) of each tap's matrix, and whether taps run backwards.
    row_stride: usize,
    column_stride: usize,
    flipped: bool,
}

impl<'a> Taps<'a> {
    /// Tap t is the matrix [Cout][Cin] of w[.., .., t / 3, t % 3].
    pub fn forward(weight: &'a [f32], in_channels: usize) -> Self {
        Self { weight, row_stride: in_channels * 9, column_stride: 9, flipped: false }
    }

    /// The input gradient's kernel: tap t is [Cin][Cout] of w[.., .., 2 - t / 3, 2 - t % 3].
    pub fn flipped(weight: &'a [f32], in_channels: usize) -> Self {
        Self { weight, row_stride: 9, column_stride: in_channels * 9, flipped: true }
    }

    /// Tap `tap` from output row `first` on.
    fn matrix(&self, tap: usize, first: usize) -> &'a [f32] {
        let t = if self.flipped { 8 - tap } else { tap };
        &self.weight[t + first * self.row_stride..]
    }
}

/// Computes tile `tile` of the convolution: the sum over taps of the tap's matrix (the channel
/// block's rows) times the input shifted by the tap, into `dst`.
pub fn conv_into(x: &Padded, taps: &Taps, plan: &Chunks, tile: usize, dst: &mut [f32]) {
    let image = tile / plan.tiles_per_image();
    let chunk = tile / plan.channel_blocks % plan.chunks;
    let block = tile % plan.channel_blocks;
    let first = block * plan.channel_block;
    let rows = plan.channel_block.min(plan.out_channels - first);
    let cin = x.image / x.plane;
    let columns = plan.chunk_columns();
    let start = image * x.image + chunk * columns;
    for tap in 0..9 {
        let lhs = taps.matrix(tap, first);
        let rhs = &x.data[start + x.tap_offset(tap)..];
        debug_assert!(lhs.len() > (rows - 1) * taps.row_stride + (cin - 1) * taps.column_stride);
        debug_assert!(rhs.len() >= (cin - 1) * x.plane + columns);
        // SAFETY: the asserted extents: lhs is rows x cin (the taps' strides), rhs is cin x columns
        // (row stride plane; the plan sized the planes for the furthest chunk and tap), dst is
        // rows x columns (row stride columns) inside this tile.
        unsafe {
            product(
                (rows, columns, cin),
                (dst.as_mut_ptr(), columns, 1),
                (lhs.as_ptr(), taps.row_stride, taps.column_stride),
                (rhs.as_ptr(), x.plane, 1),
                tap > 0,
            )
        }
    }
}

/// Smallest number of output positions per part worth a K-split of the weight gradient; below
/// it (small images) the output channels are split instead.
const MIN_POSITIONS_PER_PART: usize = 4096;

/// How the weight gradient's work is cut: each tap into `parts` ranges of output positions
/// (large images; partial sums added afterwards) or of output channels (small images).
#[derive(Debug, Clone, Copy)]
pub struct WeightSplit {
    pub parts: usize,
    pub by_channels: bool,
}

impl WeightSplit {
    pub fn plan(positions: usize, out_channels: usize) -> Self {
        let parts = rayon::current_num_threads().max(1);
        let by_channels = positions < parts * MIN_POSITIONS_PER_PART && out_channels >= 16 * parts;
        Self { parts, by_channels }
    }
}

/// One task of the weight gradient of tap `tap`: grad_out [Cout, K] times the shifted input
/// transposed [K, Cin], summed over images, for the task's part. Returns the first output
/// channel and the [channels][Cin] result.
pub fn weight_tap(x: &Padded, grad_out: &Padded, tap: usize, part: usize, split: WeightSplit) -> (usize, Vec<f32>) {
    let cin = x.image / x.plane;
    let cout = grad_out.image / grad_out.plane;
    let span = grad_out.row_span();
    let range = |len: usize| (len * part / split.parts, len * (part + 1) / split.parts);
    let ((c0, c1), (from, to)) = if split.by_channels { (range(cout), (0, span)) } else { ((0, cout), range(span)) };
    let rows = c1 - c0;
    let mut dst = vec![0.0f32; rows * cin];
    let images = grad_out.data.len() / grad_out.image;
    for image in 0..images {
        let lhs = &grad_out.data[image * grad_out.image + c0 * grad_out.plane + from..];
        let rhs = &x.data[image * x.image + from + x.tap_offset(tap)..];
        debug_assert!(rows == 0 || lhs.len() >= (rows - 1) * grad_out.plane + (to - from));
        debug_assert!(rhs.len() >= (cin - 1) * x.plane + (to - from));
        // SAFETY: lhs is rows x (to - from) with row stride plane; rhs is (to - from) x cin with
        // element (k, ci) at ci * plane + k, inside the padded plane (sized for the furthest
        // tap); dst is rows x cin.
        unsafe {
            product(
                (rows, cin, to - from),
                (dst.as_mut_ptr(), cin, 1),
                (lhs.as_ptr(), grad_out.plane, 1),
                (rhs.as_ptr(), 1, x.plane),
                image > 0,
            )
        }
    }
    (c0, dst)
}
