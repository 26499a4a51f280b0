//! Correspondences between frames of a video from their DensePose IUV (the paper's recipe, whose
//! code the original never released): within each body part, every person pixel of frame i is
//! matched to the pixel of frame j nearest in (U, V), kept when closer than a threshold. A pair is
//! usable when enough parts have enough matches; each frame gets its partners among usable pairs.

use std::path::Path;

use hdnet_formats::FileError;
use hdnet_formats::correspondences::Correspondences;
use hdnet_formats::images::{read_iuv, read_mask};
use ndarray::Array2;
use rayon::prelude::*;

use crate::iuv::{Iuv, NUM_PARTS};
use crate::layout::{Form, dirs, frame_names, frame_png, videos, write_corr_mat, write_correspondences};

/// Tunables of matching and partner selection (defaults from the paper / original data).
#[derive(Debug, Clone, Copy)]
pub struct MatchParams {
    /// Largest accepted (U, V) distance of a match.
    pub max_uv_distance: f32,
    /// A pair is usable with at least this many parts visible in both frames...
    pub min_parts: usize,
    /// ...each with at least this many matches.
    pub min_matches: usize,
    /// At most this many matches per part are kept (evenly spaced), bounding the loss cost.
    pub max_matches_per_part: usize,
    /// Partners per frame (columns of corr_mat.txt after the frame).
    pub partners: usize,
    /// Candidate partners are frames at these temporal offsets (both directions).
    pub offsets: &'static [usize],
}

impl Default for MatchParams {
    fn default() -> Self {
        Self {
            max_uv_distance: 0.02,
            min_parts: 5,
            min_matches: 50,
            max_matches_per_part: 400,
            partners: 4,
            offsets: &[1, 2, 4, 8, 16, 32],
        }
    }
}

/// Grid cells per UV axis of the per-part spatial index: a cell (1/32) is wider than the match
/// threshold, so the 3x3 cells around a query hold every candidate.
const GRID: usize = 32;

/// The pixels of one frame with their UV, bucketed per part into a UV grid.
pub struct FrameIndex {
    /// Per part (index 0..23): per grid cell, the (row, col, u, v) of its pixels.
    cells: Vec<Vec<Vec<(u32, u32, f32, f32)>>>,
    /// Per part: all pixels in row-major order.
    pixels: Vec<Vec<(u32, u32, f32, f32)>>,
}

fn cell_of(u: f32, v: f32) -> (usize, usize) {
    let c = |x: f32| ((x * GRID as f32) as usize).min(GRID - 1);
    (c(u), c(v))
}

impl FrameIndex {
    /// Indexes the person pixels (mask on and part > 0).
    pub fn new(iuv: &Iuv, mask: &Array2<f32>) -> Self {
        let parts = NUM_PARTS as usize;
        let mut cells = vec![vec![Vec::new(); GRID * GRID]; parts];
        let mut pixels = vec![Vec::new(); parts];
        for ((r, c), &p) in iuv.part.indexed_iter() {
            if p == 0 || mask[(r, c)] == 0.0 {
                continue;
            }
            let (u, v) = (iuv.u[(r, c)], iuv.v[(r, c)]);
            let entry = (r as u32, c as u32, u, v);
            let (cu, cv) = cell_of(u, v);
            cells[p as usize - 1][cv * GRID + cu].push(entry);
            pixels[p as usize - 1].push(entry);
        }
        Self { cells, pixels }
    }

    /// The pixel of `part` (0-based) nearest to (u, v) within `max_distance`. DensePose UV are
    /// quantised (1/255), so ties are common: among equally near pixels the one nearest in the
    /// image to the query pixel `at` wins, which makes a frame's match with itself the identity.
    fn nearest(&self, part: usize, u: f32, v: f32, at: (u32, u32), max_distance: f32) -> Option<(u32, u32)> {
        let (cu, cv) = cell_of(u, v);
        let image_distance = |r: u32, c: u32| (r as i64 - at.0 as i64).pow(2) + (c as i64 - at.1 as i64).pow(2);
        let mut best: (f32, i64, Option<(u32, u32)>) = (max_distance * max_distance, i64::MAX, None);
        for gv in cv.saturating_sub(1)..(cv + 2).min(GRID) {
            for gu in cu.saturating_sub(1)..(cu + 2).min(GRID) {
                for &(r, c, pu, pv) in &self.cells[part][gv * GRID + gu] {
                    let d = (pu - u).powi(2) + (pv - v).powi(2);
                    if d < best.0 || (d == best.0 && best.2.is_some() && image_distance(r, c) < best.1) {
                        best = (d, image_distance(r, c), Some((r, c)));
                    }
                }
            }
        }
        best.2
    }
}

/// Matches of frame a to frame b, grouped by part.
pub fn match_frames(a: &FrameIndex, b: &FrameIndex, params: &MatchParams) -> Correspondences {
    let mut out = Correspondences::default();
    for part in 0..NUM_PARTS as usize {
        let matches: Vec<_> = a.pixels[part]
            .iter()
            .filter_map(|&(r, c, u, v)| {
                b.nearest(part, u, v, (r, c), params.max_uv_distance).map(|pj| ([r, c], [pj.0, pj.1]))
            })
            .collect();
        push_evenly(&mut out, part as u8 + 1, matches, params.max_matches_per_part);
    }
    out
}

/// Appends the matches of `part` (parts in increasing order), at most `max` of them, evenly
/// spaced over the list, bounding the warp loss's cost.
pub fn push_evenly(out: &mut Correspondences, part: u8, matches: Vec<([u32; 2], [u32; 2])>, max: usize) {
    let stride = matches.len().div_ceil(max.max(1)).max(1);
    for (pi, pj) in matches.into_iter().step_by(stride) {
        out.part.push(part);
        out.pixel_i.push(pi);
        out.pixel_j.push(pj);
    }
}

/// Whether a pair's matches are good enough to train on.
pub fn usable(c: &Correspondences, params: &MatchParams) -> bool {
    c.part_ranges().iter().filter(|r| r.len() >= params.min_matches).count() >= params.min_parts
}

/// Partners of frame `i` of a video of `len` frames: the frames at the offsets of `params`
/// (largest first, both directions) whose `matches` with frame `i` are usable, at most
/// `params.partners`; and how many pairs were tried.
pub fn find_partners(
    i: usize,
    len: usize,
    params: &MatchParams,
    matches: impl Fn(usize) -> Correspondences,
) -> (Vec<(usize, Correspondences)>, usize) {
    let mut found = Vec::new();
    let mut tried = 0;
    for &off in params.offsets.iter().rev() {
        for j in [i.checked_sub(off), Some(i + off).filter(|&j| j < len)].into_iter().flatten() {
            if found.len() >= params.partners {
                return (found, tried);
            }
            tried += 1;
            let c = matches(j);
            if usable(&c, params) {
                found.push((j, c));
            }
        }
    }
    (found, tried)
}

/// A corr_mat.txt row's partners: rows have a fixed width, so partners repeat to fill it (a
/// random choice among the columns then still picks only usable pairs).
pub fn corr_mat_row(partners: &[String], params: &MatchParams) -> Vec<String> {
    partners.iter().cycle().take(params.partners).cloned().collect()
}

/// What [`write_partners`] found for the frames of one video.
#[derive(Debug, Default)]
pub struct Partnering {
    /// corr_mat.txt rows: each frame with partners, and its partners (repeated to fill the row).
    pub corr_mat: Vec<(String, Vec<String>)>,
    pub pairs_tried: usize,
    pub pairs_written: usize,
    /// Frames with no usable partner; left out of corr_mat.txt.
    pub frames_without_partner: Vec<String>,
}

impl Partnering {
    /// Adds another video's partnering (several videos share one corr_mat.txt).
    pub fn extend(&mut self, other: Partnering) {
        self.corr_mat.extend(other.corr_mat);
        self.pairs_tried += other.pairs_tried;
        self.pairs_written += other.pairs_written;
        self.frames_without_partner.extend(other.frames_without_partner);
    }
}

/// The one way a video's correspondences are written, whether matched from DensePose
/// (`hdnet correspond`) or known exactly (`hdnet synth video`): for each frame of `names` (one
/// video, in time order) in parallel, its partners by [`find_partners`] with `matches(i, j)`,
/// their correspondence files; the corr_mat.txt rows are returned, not written. `tick` is called
/// once per frame done.
pub fn write_partners(
    root: &Path,
    names: &[String],
    params: &MatchParams,
    form: Form,
    matches: impl Fn(usize, usize) -> Correspondences + Sync,
    tick: impl Fn() + Sync,
) -> Result<Partnering, FileError> {
    let results: Vec<Result<(usize, Vec<usize>, usize), FileError>> = (0..names.len())
        .into_par_iter()
        .map(|i| {
            let (found, tried) = find_partners(i, names.len(), params, |j| matches(i, j));
            for (j, c) in &found {
                write_correspondences(root, &names[i], &names[*j], c, form)?;
            }
            tick();
            Ok((i, found.into_iter().map(|(j, _)| j).collect(), tried))
        })
        .collect();
    let mut partnering = Partnering::default();
    for result in results {
        let (i, partners, tried) = result?;
        partnering.pairs_tried += tried;
        partnering.pairs_written += partners.len();
        if partners.is_empty() {
            partnering.frames_without_partner.push(names[i].clone());
            continue;
        }
        let partners: Vec<String> = partners.iter().map(|&j| names[j].clone()).collect();
        partnering.corr_mat.push((names[i].clone(), corr_mat_row(&partners, params)));
    }
    Ok(partnering)
}

/// Outcome of [`correspond_video`].
#[derive(Debug, Default)]
pub struct CorrespondReport {
    pub frames: usize,
    pub partnering: Partnering,
    /// Frames that could not be read (path and problem), skipped.
    pub bad_frames: Vec<String>,
}

fn load_index(root: &Path, name: &str) -> Result<FrameIndex, FileError> {
    let dp = frame_png(root, dirs::DENSEPOSE, name);
    let iuv = Iuv::decode(&read_iuv(&dp, None)?).map_err(|e| FileError::new(&dp, e))?;
    let size = iuv.part.dim();
    let mask = read_mask(frame_png(root, dirs::MASK, name), Some(size))?;
    Ok(FrameIndex::new(&iuv, &mask))
}

/// Makes correspondences for a whole video folder and writes them (and corr_mat.txt).
/// `tick` is called once per frame done (for a progress bar).
pub fn correspond_video(
    root: &Path,
    params: &MatchParams,
    form: Form,
    tick: impl Fn() + Sync,
) -> Result<CorrespondReport, FileError> {
    let names = frame_names(root)?;
    let indexed: Vec<Result<FrameIndex, FileError>> = names.par_iter().map(|n| load_index(root, n)).collect();
    let mut report = CorrespondReport { frames: names.len(), ..Default::default() };
    let mut frames = Vec::new();
    for (name, index) in names.iter().zip(indexed) {
        match index {
            Ok(index) => frames.push((name.clone(), index)),
            Err(e) => report.bad_frames.push(e.to_string()),
        }
    }
    let (names, indexes): (Vec<String>, Vec<FrameIndex>) = frames.into_iter().unzip();
    let mut first = 0;
    for video in videos(&names) {
        let index = |i: usize| &indexes[first + i];
        let matches = |i, j| match_frames(index(i), index(j), params);
        report.partnering.extend(write_partners(root, video, params, form, matches, &tick)?);
        first += video.len();
    }
    write_corr_mat(root, &report.partnering.corr_mat)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A synthetic IUV: parts 1..=6 in vertical bands, U along columns and V along rows inside
    /// each band (so every pixel has a unique (part, U, V)).
    fn synthetic(h: usize, w: usize, shift: (usize, usize)) -> (Iuv, Array2<f32>) {
        let mut iuv = Iuv { part: Array2::zeros((h, w)), u: Array2::zeros((h, w)), v: Array2::zeros((h, w)) };
        let mut mask = Array2::zeros((h, w));
        let (bh, bw) = (40, 60); // body size
        for r in 0..bh {
            for c in 0..bw {
                let (rr, cc) = (r + shift.0, c + shift.1);
                let band = c / 10;
                iuv.part[(rr, cc)] = band as u8 + 1;
                iuv.u[(rr, cc)] = (c % 10) as f32 / 10.0 + 0.05;
                iuv.v[(rr, cc)] = r as f32 / bh as f32;
                mask[(rr, cc)] = 1.0;
            }
        }
        (iuv, mask)
    }

    #[test]
    fn frame_with_itself_is_the_identity() {
        let (iuv, mask) = synthetic(64, 80, (5, 7));
        let index = FrameIndex::new(&iuv, &mask);
        let params = MatchParams { max_matches_per_part: usize::MAX, ..Default::default() };
        let c = match_frames(&index, &index, &params);
        assert_eq!(c.len(), 40 * 60);
        assert!(c.pixel_i.iter().zip(&c.pixel_j).all(|(a, b)| a == b));
        assert!(usable(&c, &params));
    }

    #[test]
    fn known_pixel_shift_is_recovered() {
        let (a, ma) = synthetic(64, 80, (5, 7));
        let (b, mb) = synthetic(64, 80, (12, 3));
        let params = MatchParams { max_matches_per_part: usize::MAX, ..Default::default() };
        let c = match_frames(&FrameIndex::new(&a, &ma), &FrameIndex::new(&b, &mb), &params);
        assert_eq!(c.len(), 40 * 60);
        for (pi, pj) in c.pixel_i.iter().zip(&c.pixel_j) {
            assert_eq!((pj[0] as i64 - pi[0] as i64, pj[1] as i64 - pi[1] as i64), (7, -4));
        }
    }

    #[test]
    fn too_few_parts_is_not_usable() {
        let (a, ma) = synthetic(64, 80, (5, 7));
        let mut mb = ma.clone();
        // keep only parts 1..4 visible in frame b
        for ((r, c), m) in mb.indexed_iter_mut() {
            if a.part[(r, c)] > 4 {
                *m = 0.0;
            }
        }
        let params = MatchParams::default();
        let c = match_frames(&FrameIndex::new(&a, &ma), &FrameIndex::new(&a, &mb), &params);
        assert_eq!(c.part_ranges().iter().filter(|r| !r.is_empty()).count(), 4);
        assert!(!usable(&c, &params));
    }
}
