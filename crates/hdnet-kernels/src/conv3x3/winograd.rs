//! Winograd F(2x2, 3x3): each 2x2 block of outputs from a 4x4 block of inputs with 16
//! multiplications per channel pair instead of 36, so the matrix products (nearly all the work)
//! shrink 2.25 times. With U = G g G^T (weights), V = B^T d B (input tile) and
//! Y = A^T (U . V) A, the element-wise product summed over input channels becomes 16 matrix
//! products [Cout x Cin] x [Cin x tiles], one per position of the 4x4 transformed tile.
//!
//! Work is cut into tasks of whole tile rows of one image (and, for small images, blocks of
//! output channels); a task transforms its input rows, runs its 16 products and transforms
//! them back into the output, all while they are in the core's L2 cache.
//! Only for even heights and widths (every level of HDNet's hourglass) and enough tiles; others
//! use the shifted GEMM.

use rayon::prelude::*;

use super::ConvShape;
use super::product::product;
use crate::shuffle::{deinterleave, interleave};

/// Positions of a transformed 4x4 tile.
const POSITIONS: usize = 16;
/// Tiles per task, roughly: enough columns for the products to run at speed.
const TARGET_TILES: usize = 256;
/// Tasks per thread wanted for load balance.
const TASKS_PER_THREAD: usize = 4;

/// Fewest tiles in a batch for which Winograd pays: below it each transformed weight matrix
/// (16 of them, each as large as the 3x3 kernel's nine taps together) serves too few columns,
/// and the shifted GEMM, which reads its weights once per pixel rather than per tile, is
/// faster (the measurements behind the threshold: README, Figures).
const MIN_TILES: usize = 1024;

/// Most channel pairs for which the weight gradient runs here: its 16 accumulated [Cout x Cin]
/// matrices are read and written once per task, which costs more than the 2.25x saving beyond
/// about this size (README, Figures).
const MAX_WEIGHT_GRAD_PAIRS: usize = 256 * 1024;

/// Whether the forward convolution runs here: decided by the size of one image, so that an
/// image gets bit for bit the same result in any batch.
pub fn applies_to_forward(shape: &ConvShape) -> bool {
    even(shape) && shape.height * shape.width / 4 >= MIN_TILES
}

/// Whether the input gradient runs here (training only: decided by the whole batch's tiles).
pub fn applies_to_input_grad(shape: &ConvShape) -> bool {
    even(shape) && shape.batch * shape.height * shape.width / 4 >= MIN_TILES
}

/// Whether the weight gradient runs here.
pub fn applies_to_weight_grad(shape: &ConvShape) -> bool {
    applies_to_input_grad(shape) && shape.in_channels * shape.out_channels <= MAX_WEIGHT_GRAD_PAIRS
}

fn even(shape: &ConvShape) -> bool {
    shape.height.is_multiple_of(2) && shape.width.is_multiple_of(2)
}

/// out [N, Cout, H, W] = conv(x, weight) + bias; `weight` [Cout, Cin, 3, 3].
pub fn convolve(x: &[f32], weight: &[f32], bias: Option<&[f32]>, shape: ConvShape, out: &mut [f32]) {
    let u = transform_weights(weight, shape.out_channels, shape.in_channels);
    let plan = Plan::new(shape, true);
    let out = SharedOut(out.as_mut_ptr(), out.len());
    (0..plan.tasks()).into_par_iter().for_each(|task| {
        let (image, rows, channels) = plan.task(task);
        let sink = &out;
        with_scratch(|v, m| {
            crate::vectorized(
                #[inline(always)]
                || transform_inputs(x, &plan, image, rows.clone(), v),
            );
            products(&u, v, &plan, channels.clone(), rows.len() * plan.tiles_x, m);
            crate::vectorized(
                #[inline(always)]
                || {
                    transform_outputs(m, bias, &plan, image, rows, channels, |offset, values| {
                        // SAFETY: tasks cover disjoint (image, tile rows, channel block) parts of
                        // `out`, so no two tasks write the same element; offsets are checked
                        // against its length.
                        unsafe { sink.write(offset, values) }
                    })
                },
            );
        });
    });
}

thread_local! {
    /// Each thread's two transformed-tile buffers, kept between tasks and calls (they are
    /// overwritten whole each time): allocating them per task zeroed megabytes for nothing.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

fn with_scratch<R>(f: impl FnOnce(&mut Vec<f32>, &mut Vec<f32>) -> R) -> R {
    SCRATCH.with_borrow_mut(|(a, b)| f(a, b))
}

/// The output buffer shared by the tasks, each writing its own elements.
struct SharedOut(*mut f32, usize);

// SAFETY: only used for the disjoint writes described at `convolve`.
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// # Safety
    /// No other thread may access `offset..offset + values.len()` meanwhile.
    unsafe fn write(&self, offset: usize, values: &[f32]) {
        assert!(offset + values.len() <= self.1, "winograd: write past the output");
        // SAFETY: in bounds (asserted) and exclusive (the caller's promise).
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), self.0.add(offset), values.len()) }
    }
}

/// Gradient of the weights [Cout, Cin, 3, 3] from the input `x` and the output gradient
/// `grad_out`: with U = G g G^T the products' gradient is dU[position] = sum over tiles of
/// (A dY A^T)[position] (B^T d B)[position]^T, and dg = G^T dU G. Tasks are tile rows whose
/// products accumulate into one dU per thread.
pub fn weight_grad(x: &[f32], grad_out: &[f32], shape: ConvShape) -> Vec<f32> {
    let plan = Plan::new(shape, false);
    let len = POSITIONS * shape.out_channels * shape.in_channels;
    // one accumulator per thread, each over a contiguous share of the tasks (a fold per rayon
    // split would allocate and add far more of these large buffers)
    let threads = rayon::current_num_threads().clamp(1, plan.tasks());
    let du = (0..threads)
        .into_par_iter()
        .map(|share| {
            let mut du = vec![0.0f32; len];
            for task in plan.tasks() * share / threads..plan.tasks() * (share + 1) / threads {
                let (image, rows, _) = plan.task(task);
                with_scratch(|v, dm| {
                    crate::vectorized(
                        #[inline(always)]
                        || {
                            transform_inputs(x, &plan, image, rows.clone(), v);
                            transform_grads(grad_out, &plan, image, rows.clone(), dm);
                        },
                    );
                    accumulate_products(dm, v, &plan, rows.len() * plan.tiles_x, &mut du);
                });
            }
            du
        })
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
            a
        })
        .unwrap_or_else(|| vec![0.0; len]);
    untransform_weights(&du, shape.out_channels, shape.in_channels)
}

/// How the work is cut: `rows_per_task` tile rows of one image, times `channel_blocks` blocks of
/// output channels.
struct Plan {
    shape: ConvShape,
    tiles_x: usize,
    tiles_y: usize,
    rows_per_task: usize,
    row_blocks: usize,
    channel_block: usize,
    channel_blocks: usize,
}

impl Plan {
    /// `split_channels`: whether output channels may be cut into blocks when there are too few
    /// tile rows for the threads.
    fn new(shape: ConvShape, split_channels: bool) -> Self {
        let (tiles_y, tiles_x) = (shape.height / 2, shape.width / 2);
        let row_blocks = tiles_y.div_ceil((TARGET_TILES / tiles_x).clamp(1, tiles_y));
        let rows_per_task = tiles_y.div_ceil(row_blocks);
        let row_blocks = tiles_y.div_ceil(rows_per_task);
        let wanted = TASKS_PER_THREAD * rayon::current_num_threads().max(1);
        let most = if split_channels { shape.out_channels.div_ceil(16) } else { 1 };
        let channel_blocks = wanted.div_ceil(shape.batch * row_blocks).clamp(1, most);
        let channel_block = shape.out_channels.div_ceil(channel_blocks);
        let channel_blocks = shape.out_channels.div_ceil(channel_block);
        Self { shape, tiles_x, tiles_y, rows_per_task, row_blocks, channel_block, channel_blocks }
    }

    fn tasks(&self) -> usize {
        self.shape.batch * self.row_blocks * self.channel_blocks
    }

    /// (image, tile rows, output channels) of task `task`.
    fn task(&self, task: usize) -> (usize, std::ops::Range<usize>, std::ops::Range<usize>) {
        let block = task % self.channel_blocks;
        let row_block = task / self.channel_blocks % self.row_blocks;
        let image = task / (self.channel_blocks * self.row_blocks);
        let rows = row_block * self.rows_per_task..((row_block + 1) * self.rows_per_task).min(self.tiles_y);
        let channels = block * self.channel_block..((block + 1) * self.channel_block).min(self.shape.out_channels);
        (image, rows, channels)
    }
}

/// U [16][Cout][Cin] = G g G^T for every 3x3 kernel g of `weight` [Cout, Cin, 3, 3], with
/// G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]].
fn transform_weights(weight: &[f32], out_channels: usize, in_channels: usize) -> Vec<f32> {
    let pairs = out_channels * in_channels;
    let mut u = vec![0.0; POSITIONS * pairs];
    for (pair, g) in weight.chunks_exact(9).enumerate() {
        // G g, column by column: gg[k][i] is row i of column k
        let gg: [[f32; 4]; 3] = std::array::from_fn(|k| times_g(g[k], g[3 + k], g[6 + k]));
        for i in 0..4 {
            for (j, value) in times_g(gg[0][i], gg[1][i], gg[2][i]).into_iter().enumerate() {
                u[(4 * i + j) * pairs + pair] = value;
            }
        }
    }
    u
}

/// dg [Cout, Cin, 3, 3] = G^T dU G for every [16] column of `du` [16][Cout][Cin]: the adjoint
/// of [`transform_weights`].
fn untransform_weights(du: &[f32], out_channels: usize, in_channels: usize) -> Vec<f32> {
    let pairs = out_channels * in_channels;
    let mut dg = vec![0.0; 9 * pairs];
    for (pair, kernel) in dg.chunks_exact_mut(9).enumerate() {
        let at = |i: usize, j: usize| du[(4 * i + j) * pairs + pair];
        // G^T dU, column by column: rows[j][k] is row k of column j
        let rows: [[f32; 3]; 4] = std::array::from_fn(|j| times_g_transposed([at(0, j), at(1, j), at(2, j), at(3, j)]));
        for k in 0..3 {
            let row = times_g_transposed([rows[0][k], rows[1][k], rows[2][k], rows[3][k]]);
            kernel[3 * k..3 * k + 3].copy_from_slice(&row);
        }
    }
    dg
}

/// G^T times the column r.
fn times_g_transposed(r: [f32; 4]) -> [f32; 3] {
    [r[0] + 0.5 * (r[1] + r[2]), 0.5 * (r[1] - r[2]), 0.5 * (r[1] + r[2]) + r[3]]
}

/// G times the column (a, b, c).
fn times_g(a: f32, b: f32, c: f32) -> [f32; 4] {
    [a, (a + b + c) * 0.5, (a - b + c) * 0.5, c]
}

/// Rows of B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], each as
/// (p, q, sign): element p plus sign times element q.
const BT: [(usize, usize, f32); 4] = [(0, 2, -1.0), (1, 2, 1.0), (2, 1, -1.0), (1, 3, -1.0)];

/// V [16][Cin][tiles] = B^T d B for the task's tile rows.
///
/// Input rows are first split into even and odd columns of the zero-padded row, so that the
/// four columns of every tile of a row are four contiguous slices and the loops vectorise.
#[inline(always)] // into `crate::vectorized`'s AVX-512 code
fn transform_inputs(x: &[f32], plan: &Plan, image: usize, rows: std::ops::Range<usize>, v: &mut Vec<f32>) {
    let ConvShape { in_channels, height, width, .. } = plan.shape;
    let (n, tiles) = (plan.tiles_x, rows.len() * plan.tiles_x);
    v.resize(POSITIONS * in_channels * tiles, 0.0);
    let mut split = vec![[vec![0.0f32; n + 1], vec![0.0f32; n + 1]]; 4];
    let mut vertical = [vec![0.0f32; n + 1], vec![0.0f32; n + 1]];
    for channel in 0..in_channels {
        let plane = &x[(image * in_channels + channel) * height * width..][..height * width];
        for (local, ty) in rows.clone().enumerate() {
            for (k, halves) in split.iter_mut().enumerate() {
                // padded row 2 ty + k is image row 2 ty + k - 1
                let y = (2 * ty + k).checked_sub(1).filter(|&y| y < height);
                split_row(y.map(|y| &plane[y * width..][..width]), halves);
            }
            for (i, &(p, q, sign)) in BT.iter().enumerate() {
                for (half, dst) in vertical.iter_mut().enumerate() {
                    combine(&split[p][half], &split[q][half], sign, dst);
                }
                // column c of tile tx is vertical[c % 2][tx + c / 2]
                let column = |c: usize| &vertical[c % 2][c / 2..][..n];
                for (j, &(p, q, sign)) in BT.iter().enumerate() {
                    let dst = &mut v[((4 * i + j) * in_channels + channel) * tiles + local * n..][..n];
                    combine(column(p), column(q), sign, dst);
                }
            }
        }
    }
}

/// dst = a + sign * b, element-wise.
#[inline(always)] // into `crate::vectorized`'s AVX-512 code
fn combine(a: &[f32], b: &[f32], sign: f32, dst: &mut [f32]) {
    for (o, (p, q)) in dst.iter_mut().zip(a.iter().zip(b)) {
        *o = p + sign * q;
    }
}

/// Padded row (zero when `row` is None) split into even columns [0, x1, x3, ..] and odd columns
/// [x0, x2, .., 0].
#[inline(always)] // into `crate::vectorized`'s AVX-512 code
fn split_row(row: Option<&[f32]>, halves: &mut [Vec<f32>; 2]) {
    let [even, odd] = halves;
    match row {
        None => {
            even.fill(0.0);
            odd.fill(0.0);
        }
        Some(row) => {
            let n = row.len() / 2;
            even[0] = 0.0;
            odd[n] = 0.0;
            deinterleave(row, &mut odd[..n], &mut even[1..]);
        }
    }
}

/// M [16][channels][tiles] = U[position][channels] x V[position] for the task's channels.
fn products(u: &[f32], v: &[f32], plan: &Plan, channels: std::ops::Range<usize>, tiles: usize, m: &mut Vec<f32>) {
    let (cin, cout) = (plan.shape.in_channels, plan.shape.out_channels);
    let rows = channels.len();
    m.resize(POSITIONS * rows * tiles, 0.0);
    for position in 0..POSITIONS {
        let lhs = &u[(position * cout + channels.start) * cin..][..rows * cin];
        let rhs = &v[position * cin * tiles..][..cin * tiles];
        let dst = &mut m[position * rows * tiles..][..rows * tiles];
        // SAFETY: lhs is rows x cin, rhs cin x tiles, dst rows x tiles, all row-major and
        // exactly the slices' lengths.
        unsafe {
            product(
                (rows, tiles, cin),
                (dst.as_mut_ptr(), tiles, 1),
                (lhs.as_ptr(), cin, 1),
                (rhs.as_ptr(), tiles, 1),
                false,
            )
        }
    }
}

/// Rows of A = [[1, 0], [1, 1], [1, -1], [0, -1]] (the adjoint of A^T's output transform).
const A: [(f32, f32); 4] = [(1.0, 0.0), (1.0, 1.0), (1.0, -1.0), (0.0, -1.0)];

/// dM [16][Cout][tiles] = A dY A^T for the task's tile rows of `grad_out`: the adjoint of
/// [`transform_outputs`].
#[inline(always)] // into `crate::vectorized`'s AVX-512 code
fn transform_grads(grad_out: &[f32], plan: &Plan, image: usize, rows: std::ops::Range<usize>, dm: &mut Vec<f32>) {
    let ConvShape { out_channels, height, width, .. } = plan.shape;
    let (n, tiles) = (plan.tiles_x, rows.len() * plan.tiles_x);
    dm.resize(POSITIONS * out_channels * tiles, 0.0);
    // even and odd columns of the tile row's two output rows, then of A's combinations of them
    let mut split = vec![[vec![0.0f32; n], vec![0.0f32; n]]; 2];
    let mut vertical = [vec![0.0f32; n], vec![0.0f32; n]];
    for channel in 0..out_channels {
        let plane = &grad_out[(image * out_channels + channel) * height * width..][..height * width];
        for (local, ty) in rows.clone().enumerate() {
            for (a, [even, odd]) in split.iter_mut().enumerate() {
                deinterleave(&plane[(2 * ty + a) * width..][..width], even, odd);
            }
            for (i, &(p, q)) in A.iter().enumerate() {
                for (half, dst) in vertical.iter_mut().enumerate() {
                    weighted_sum(p, &split[0][half], q, &split[1][half], dst);
                }
                for (j, &(p, q)) in A.iter().enumerate() {
                    let dst = &mut dm[((4 * i + j) * out_channels + channel) * tiles + local * n..][..n];
                    weighted_sum(p, &vertical[0], q, &vertical[1], dst);
                }
            }
        }
    }
}

/// dst = p a + q b, element-wise.
#[inline(always)] // into `crate::vectorized`'s AVX-512 code
fn weighted_sum(p: f32, a: &[f32], q: f32, b: &[f32], dst: &mut [f32]) {
    for (o, (x, y)) in dst.iter_mut().zip(a.iter().zip(b)) {
        *o = p * x + q * y;
    }
}

/// du[position] += dM[position] [Cout x tiles] times V[position]^T [tiles x Cin].
fn accumulate_products(dm: &[f32], v: &[f32], plan: &Plan, tiles: usize, du: &mut [f32]) {
    let (cin, cout) = (plan.shape.in_channels, plan.shape.out_channels);
    for position in 0..POSITIONS {
        let lhs = &dm[position * cout * tiles..][..cout * tiles];
        let rhs = &v[position * cin * tiles..][..cin * tiles];
        let dst = &mut du[position * cout * cin..][..cout * cin];
        // SAFETY: lhs is cout x tiles (row-major), rhs is tiles x cin with element (t, c) at
        // c * tiles + t, dst is cout x cin (row-major), all exactly the slices' lengths.
        unsafe {
            product(
                (cout, cin, tiles),
                (dst.as_mut_ptr(), cin, 1),
                (lhs.as_ptr(), tiles, 1),
                (rhs.as_ptr(), 1, tiles),
                true,
            )
        }
    }
}

/// dst = row i of A^T = [[1, 1, 1, 0], [0, 1, -1, -1]] applied to the four slices, plus b.
#[inline(always)] // into `crate::vectorized`'s AVX-512 code
fn a_transposed_row(i: usize, [m0, m1, m2, m3]: [&[f32]; 4], b: f32, dst: &mut [f32]) {
    let n = dst.len();
    let (m0, m1, m2, m3) = (&m0[..n], &m1[..n], &m2[..n], &m3[..n]);
    if i == 0 {
        for k in 0..n {
            dst[k] = m0[k] + m1[k] + m2[k] + b;
        }
    } else {
        for k in 0..n {
            dst[k] = m1[k] - m2[k] - m3[k] + b;
        }
    }
}

/// Y = A^T M A (+ bias) for the task's tiles and channels, written row by row through `write`
/// (offset into the output, values), with A^T = [[1, 1, 1, 0], [0, 1, -1, -1]].
#[inline(always)] // into `crate::vectorized`'s AVX-512 code
fn transform_outputs(
    m: &[f32],
    bias: Option<&[f32]>,
    plan: &Plan,
    image: usize,
    rows: std::ops::Range<usize>,
    channels: std::ops::Range<usize>,
    mut write: impl FnMut(usize, &[f32]),
) {
    let ConvShape { out_channels, height, width, .. } = plan.shape;
    let (tx, tiles) = (plan.tiles_x, rows.len() * plan.tiles_x);
    let block = channels.len();
    // row i of A^T M, columns j = 0..4, for every tile of a row; then its even and odd outputs
    let mut s = [vec![0.0f32; tx], vec![0.0f32; tx], vec![0.0f32; tx], vec![0.0f32; tx]];
    let (mut even, mut odd) = (vec![0.0f32; tx], vec![0.0f32; tx]);
    let mut line = vec![0.0f32; width];
    for (local_channel, channel) in channels.enumerate() {
        let b = bias.map_or(0.0, |b| b[channel]);
        let plane = (image * out_channels + channel) * height * width;
        for (local, ty) in rows.clone().enumerate() {
            let at = |i: usize, j: usize| &m[((4 * i + j) * block + local_channel) * tiles + local * tx..][..tx];
            for i in 0..2 {
                for (j, sj) in s.iter_mut().enumerate() {
                    let (m0, m1, m2, m3) = (at(0, j), at(1, j), at(2, j), at(3, j));
                    a_transposed_row(i, [m0, m1, m2, m3], 0.0, sj);
                }
                a_transposed_row(0, [&s[0], &s[1], &s[2], &s[3]], b, &mut even);
                a_transposed_row(1, [&s[0], &s[1], &s[2], &s[3]], b, &mut odd);
                interleave(&even, &odd, &mut line);
                write(plane + (2 * ty + i) * width, &line);
            }
        }
    }
}
