//! The original training-data layouts (the original repository's `training/README.md`), read the
//! way its `IO.py` reads them, plus hdnet's binary form of the same files.
//!
//! Labelled renders ("Tang_data"/RenderPeople): `color_WO_bg/NAME.png`, `mask/NAME.png`,
//! `densepose/NAME.png`, `depth/NAME.txt` and `normal/NAME_{1,2,3}.txt` (comma separated).
//! Unlabelled videos ("tiktok_data"): `color_WO_bg/`, `mask/`, `densepose/`,
//! `pred_normals/NAME_{1,2,3}.txt` (space separated), `correspondences/corr_mat.txt` (a frame and
//! its partner frames per row) and `correspondences/corrs/I_J_i_r1_c1_r2_c2.txt` +
//! `I_J_i_limit.txt`. Frame names are 7-digit numbers (`0000042`).
//!
//! hdnet's binary form replaces the text matrices by `.npy` files next to them:
//! `depth/NAME.npy` (H, W), `normal/NAME.npy` and `pred_normals/NAME.npy` (H, W, 3), and
//! `correspondences/corrs/I_J.npy` (N, 5 int32: part, r1, c1, r2, c2, 1-based as the text).
//! Where both exist the `.npy` is read.

use std::path::{Path, PathBuf};

use hdnet_formats::correspondences::Correspondences;
use hdnet_formats::images::{PersonImage, save_mask, white_background};
use hdnet_formats::visual::{save_png, side_by_side, to_u8};
use hdnet_formats::{FileError, npy, text, write_atomic};
use hdnet_geometry::{Camera, median};
use ndarray::{Array2, Array3, Axis, Ix2, Ix3, stack};

use crate::iuv::NUM_PARTS;

/// The folders of the layouts, one per kind of per-frame file.
pub mod dirs {
    /// The person over white: what the networks read (and the list of frames).
    pub const COLOR: &str = "color_WO_bg";
    /// The person over a background (synthetic data only; not read by training).
    pub const COLOR_WITH_BACKGROUND: &str = "color";
    pub const MASK: &str = "mask";
    pub const DENSEPOSE: &str = "densepose";
    pub const DEPTH: &str = "depth";
    pub const NORMAL: &str = "normal";
    /// The normal net's predictions for video frames (the depth net's input there).
    pub const PRED_NORMALS: &str = "pred_normals";
    pub const CORRESPONDENCES: &str = "correspondences";
    /// Synthetic videos keep their depth and normals here, aside from the unlabelled layout.
    pub const GROUND_TRUTH: &str = "ground_truth";
    /// Each frame's camera (`NAME.json`, see [`hdnet_geometry::Camera`]); frames without one
    /// were taken by the original's camera (the original's data, people at about 4 m).
    pub const CAMERA: &str = "camera";
}

/// The PNG of frame `name` in folder `dir` of `root` (`ROOT/DIR/NAME.png`).
pub fn frame_png(root: &Path, dir: &str, name: &str) -> PathBuf {
    root.join(dir).join(format!("{name}.png"))
}

/// Writes a frame's pictures as `NAME.png`: `color/` the frame (0..255) as taken, `color_WO_bg/`
/// the same on white off `mask` (as a photo's person is cut out: the edges as photographed),
/// `densepose/` its IUV (stored form) and `mask/` (255 on the person).
pub fn write_pictures(
    root: &Path,
    name: &str,
    rgb: &Array3<f32>,
    mask: &Array2<f32>,
    iuv: &Array3<f32>,
) -> Result<(), FileError> {
    let save = |dir: &str, a: &Array3<f32>| {
        std::fs::create_dir_all(root.join(dir)).map_err(|e| FileError::new(root.join(dir), e))?;
        save_png(frame_png(root, dir, name), &side_by_side(&[to_u8(a)]))
    };
    save(dirs::COLOR_WITH_BACKGROUND, rgb)?;
    save(dirs::COLOR, &white_background(rgb, mask))?;
    save(dirs::DENSEPOSE, iuv)?;
    std::fs::create_dir_all(root.join(dirs::MASK)).map_err(|e| FileError::new(root.join(dirs::MASK), e))?;
    save_mask(frame_png(root, dirs::MASK, name), mask)
}

/// Valid ground-truth depth range of the original (metres).
pub const DEPTH_RANGE: (f32, f32) = (1.0, 8.0);
/// The original shifts every ground-truth depth map so that its median is this.
pub const DEPTH_MEDIAN: f32 = 4.0;

/// Which files to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The original text files only.
    Original,
    /// hdnet's `.npy` files only.
    Binary,
    /// Both.
    Both,
}

impl Form {
    pub fn text(self) -> bool {
        matches!(self, Form::Original | Form::Both)
    }

    pub fn binary(self) -> bool {
        matches!(self, Form::Binary | Form::Both)
    }
}

/// A labelled frame after the original preprocessing.
#[derive(Debug, Clone)]
pub struct LabelledFrame {
    /// The mask is 1 where mask > 100 and the depth lies in [1, 8].
    pub person: PersonImage,
    pub camera: Camera,
    /// Depth shifted to median 4 on the mask, 0 elsewhere.
    pub depth: Array2<f32>,
    /// Ground-truth normals, 0 off the mask.
    pub normals: Array3<f32>,
}

/// An unlabelled video frame after the original preprocessing.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    pub person: PersonImage,
    pub camera: Camera,
    /// Normals predicted by the normal net (`hdnet predict-normals`), 0 off the mask.
    pub normals: Array3<f32>,
}

/// The 7-digit name of frame number `n`.
pub fn frame_name(n: u64) -> String {
    format!("{n:07}")
}

/// Frame numbers of one folder this far apart or more belong to different videos (shots):
/// `hdnet correspond` pairs frames only within a video, and `hdnet segment --video-layout`
/// numbers a new shot, and frames added to a folder, so. Above the farthest partner (32 frames).
pub const SHOT_GAP: u64 = 100;

/// `names` (sorted frame names) split into videos: runs whose numbers jump by less than
/// [`SHOT_GAP`] (names that are not numbers join the run before them).
pub fn videos(names: &[String]) -> Vec<&[String]> {
    let number = |k: usize| names[k].parse::<u64>().ok();
    let mut starts = vec![0];
    for k in 1..names.len() {
        if let (Some(a), Some(b)) = (number(k - 1), number(k))
            && b >= a + SHOT_GAP
        {
            starts.push(k);
        }
    }
    starts.iter().zip(starts.iter().skip(1).chain([&names.len()])).map(|(&a, &b)| &names[a..b]).collect()
}

/// Names the frames written into a video folder: the first 0 (or after the frames the folder
/// holds, a jump of [`SHOT_GAP`]), then one by one, jumping by [`SHOT_GAP`] at each new shot.
#[derive(Default)]
pub struct FrameNumbering {
    last: Option<u64>,
}

impl FrameNumbering {
    /// Numbering for frames added to `root` (which may not exist yet).
    pub fn after(root: &Path) -> Self {
        let held = frame_names(root).unwrap_or_default();
        Self { last: held.iter().filter_map(|n| n.parse::<u64>().ok()).max() }
    }

    /// The name of the next frame; `new_shot`: it does not continue the previous frame's shot.
    pub fn next(&mut self, new_shot: bool) -> String {
        let n = self.last.map_or(0, |last| last + if new_shot { SHOT_GAP } else { 1 });
        self.last = Some(n);
        frame_name(n)
    }
}

/// Frame names: the stems of `color_WO_bg/*.png`, sorted.
pub fn frame_names(root: &Path) -> Result<Vec<String>, FileError> {
    let dir = root.join(dirs::COLOR);
    let entries = std::fs::read_dir(&dir).map_err(|e| FileError::new(&dir, e))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|f| f.strip_suffix(".png")).map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}

/// Files of `mask/` and `densepose/` whose frame has no `color_WO_bg/` image: such a frame is not
/// a frame of the folder (its list comes from `color_WO_bg/`), which readers must say rather than
/// drop it unseen.
pub fn frames_without_color(root: &Path) -> Vec<PathBuf> {
    let names = frame_names(root).unwrap_or_default();
    let mut orphans: Vec<PathBuf> = [dirs::MASK, dirs::DENSEPOSE]
        .into_iter()
        .filter_map(|dir| std::fs::read_dir(root.join(dir)).ok())
        .flat_map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()))
        .filter(|path| {
            let stem = path.file_name().and_then(|f| f.to_str()).and_then(|f| f.strip_suffix(".png"));
            stem.is_some_and(|s| names.binary_search_by(|n| n.as_str().cmp(s)).is_err())
        })
        .collect();
    orphans.sort();
    orphans
}

/// The error for a file of [`frames_without_color`].
pub fn missing_color(orphan: &Path) -> FileError {
    FileError::new(orphan, "its frame has no color_WO_bg/ image, so it is left out")
}

fn check_shape(path: &Path, got: &[usize], want: &[usize]) -> Result<(), FileError> {
    if got != want {
        return Err(FileError::new(path, format!("shape {got:?}, expected {want:?}")));
    }
    Ok(())
}

/// The shared image part of both layouts.
fn read_person(root: &Path, name: &str) -> Result<PersonImage, FileError> {
    PersonImage::read(name, &[dirs::COLOR, dirs::MASK, dirs::DENSEPOSE].map(|dir| frame_png(root, dir, name)), None)
}

/// Reads a single-channel matrix from `DIR/NAME.npy` or else `DIR/NAME.txt`.
fn read_matrix(dir: &Path, name: &str, size: (usize, usize)) -> Result<Array2<f32>, FileError> {
    let npy_path = dir.join(format!("{name}.npy"));
    let (path, m) = if npy_path.exists() {
        let m = npy::read::<f32>(&npy_path)?
            .into_dimensionality::<Ix2>()
            .map_err(|_| FileError::new(&npy_path, "not a 2-D array"))?;
        (npy_path, m)
    } else {
        let txt = dir.join(format!("{name}.txt"));
        let m = text::read_matrix(&txt)?;
        (txt, m)
    };
    check_shape(&path, m.shape(), &[size.0, size.1])?;
    check_finite(&path, m.iter())?;
    Ok(m)
}

/// Ground truth and predicted normals must be numbers: a NaN would turn training's loss NaN at
/// the step that samples the frame, far from the file that caused it.
fn check_finite<'a>(path: &Path, mut values: impl Iterator<Item = &'a f32>) -> Result<(), FileError> {
    match values.find(|v| !v.is_finite()) {
        Some(bad) => Err(FileError::new(path, format!("holds a non-finite value ({bad})"))),
        None => Ok(()),
    }
}

/// Reads normals from `DIR/NAME.npy` (H, W, 3) or else `DIR/NAME_{1,2,3}.txt`.
fn read_normals(dir: &Path, name: &str, size: (usize, usize)) -> Result<Array3<f32>, FileError> {
    let npy_path = dir.join(format!("{name}.npy"));
    if npy_path.exists() {
        let n = npy::read::<f32>(&npy_path)?
            .into_dimensionality::<Ix3>()
            .map_err(|_| FileError::new(&npy_path, "not a 3-D array"))?;
        check_shape(&npy_path, n.shape(), &[size.0, size.1, 3])?;
        check_finite(&npy_path, n.iter())?;
        return Ok(n);
    }
    let parts = (1..=3).map(|k| read_matrix(dir, &format!("{name}_{k}"), size)).collect::<Result<Vec<_>, _>>()?;
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    Ok(stack(Axis(2), &views).expect("same shapes"))
}

fn zero_off_mask(normals: &mut Array3<f32>, mask: &Array2<f32>) {
    for ((r, c, _), v) in normals.indexed_iter_mut() {
        if mask[(r, c)] == 0.0 {
            *v = 0.0;
        }
    }
}

/// Where the ground truth of a folder lies: `DIR/ground_truth/` for synthetic videos (kept
/// aside from the unlabelled layout), else `DIR` itself.
pub fn ground_truth_root(root: &Path) -> PathBuf {
    let aside = root.join(dirs::GROUND_TRUTH);
    if aside.join(dirs::DEPTH).is_dir() && !root.join(dirs::DEPTH).is_dir() { aside } else { root.to_path_buf() }
}

/// Reads and preprocesses labelled frame `name` as the original `read_renderpeople` does (the
/// depth and normals of a synthetic video's frame from its `ground_truth/` folder).
pub fn read_labelled(root: &Path, name: &str) -> Result<LabelledFrame, FileError> {
    let person = read_person(root, name)?;
    let size = person.size();
    let labels = ground_truth_root(root);
    let raw_depth = read_matrix(&labels.join(dirs::DEPTH), name, size)?;
    let normals = read_normals(&labels.join(dirs::NORMAL), name, size)?;
    LabelledFrame::preprocessed(person, camera_file(root, name)?, &raw_depth, normals)
        .map_err(|e| FileError::new(labels.join(dirs::DEPTH).join(name), e))
}

impl LabelledFrame {
    /// A labelled frame as the original's `read_renderpeople` prepares it: the mask kept where
    /// the depth lies in [1, 8] m, the depth shifted to median 4 there and zero elsewhere, the
    /// normals zero off the mask. Fails when no mask pixel has a valid depth.
    ///
    /// A frame with its own `camera` (taken from any distance) gets that camera moved to the
    /// shifted depth ([`Camera::moved_to_depth`]), so that the shifted depth still describes
    /// the person's shape and size; without one (the original's data) the original's camera
    /// is kept, as the original trains.
    pub fn preprocessed(
        mut person: PersonImage,
        camera: Option<Camera>,
        raw_depth: &Array2<f32>,
        mut normals: Array3<f32>,
    ) -> Result<Self, &'static str> {
        person.restrict_mask(|p| (DEPTH_RANGE.0..=DEPTH_RANGE.1).contains(&raw_depth[p]));
        let mask = &person.mask;
        let on: Vec<f32> = raw_depth.iter().zip(mask).filter(|(_, m)| **m > 0.0).map(|(d, _)| *d).collect();
        if on.is_empty() {
            return Err("no mask pixel has a depth in [1, 8] m");
        }
        let shift = median(on);
        let depth =
            Array2::from_shape_fn(
                mask.dim(),
                |p| if mask[p] > 0.0 { raw_depth[p] + DEPTH_MEDIAN - shift } else { 0.0 },
            );
        zero_off_mask(&mut normals, mask);
        let camera = camera.map_or_else(Camera::original, |c| c.moved_to_depth(shift, DEPTH_MEDIAN));
        Ok(Self { person, camera, depth, normals })
    }
}

/// Reads and preprocesses video frame `name` as the original `read_tiktok` does.
pub fn read_video_frame(root: &Path, name: &str) -> Result<VideoFrame, FileError> {
    let person = read_person(root, name)?;
    let mut normals = read_normals(&root.join(dirs::PRED_NORMALS), name, person.size())?;
    zero_off_mask(&mut normals, &person.mask);
    Ok(VideoFrame { person, camera: read_camera(root, name)?, normals })
}

/// `correspondences/corr_mat.txt`: each row a frame and its partners (frame numbers).
pub fn read_corr_mat(root: &Path) -> Result<Vec<(String, Vec<String>)>, FileError> {
    let path = root.join(dirs::CORRESPONDENCES).join("corr_mat.txt");
    let m = text::read_matrix(&path)?;
    m.rows()
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let names = row
                .iter()
                .map(|&v| {
                    if v < 0.0 || v.fract() != 0.0 {
                        Err(FileError::new(&path, format!("line {}: '{v}' is not a frame number", i + 1)))
                    } else {
                        Ok(frame_name(v as u64))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            let (first, rest) = names.split_first().ok_or_else(|| FileError::new(&path, "empty row"))?;
            Ok((first.clone(), rest.to_vec()))
        })
        .collect()
}

pub fn corr_dir(root: &Path) -> PathBuf {
    root.join(dirs::CORRESPONDENCES).join("corrs")
}

fn corr_text_paths(root: &Path, i: &str, j: &str) -> (PathBuf, PathBuf) {
    let dir = corr_dir(root);
    (dir.join(format!("{i}_{j}_i_r1_c1_r2_c2.txt")), dir.join(format!("{i}_{j}_i_limit.txt")))
}

fn corr_npy_path(root: &Path, i: &str, j: &str) -> PathBuf {
    corr_dir(root).join(format!("{i}_{j}.npy"))
}

/// Correspondences of frames (i, j): the `.npy` form when present, else the original text pair.
/// Reads the correspondences of frames (i, j) of `size` (H, W): every match must lie inside.
pub fn read_correspondences(root: &Path, i: &str, j: &str, size: (usize, usize)) -> Result<Correspondences, FileError> {
    let npy_path = corr_npy_path(root, i, j);
    let (c, path) = if npy_path.exists() {
        (read_correspondences_npy(&npy_path)?, npy_path)
    } else {
        let (corrs, limits) = corr_text_paths(root, i, j);
        (Correspondences::read_original(&corrs, &limits)?, corrs)
    };
    c.check_within(size.0, size.1).map_err(|e| FileError::new(&path, e))?;
    Ok(c)
}

fn read_correspondences_npy(npy_path: &Path) -> Result<Correspondences, FileError> {
    let rows = npy::read::<i32>(npy_path)?
        .into_dimensionality::<Ix2>()
        .map_err(|_| FileError::new(npy_path, "not a 2-D array"))?;
    if rows.ncols() != 5 {
        return Err(FileError::new(npy_path, format!("{} columns, expected 5", rows.ncols())));
    }
    let mut out = Correspondences::default();
    let mut last_part = 0;
    for (k, row) in rows.rows().into_iter().enumerate() {
        let bad = |what: &str| FileError::new(npy_path, format!("row {k}: {what}"));
        if !(1..=i32::from(NUM_PARTS)).contains(&row[0]) || row[0] < last_part {
            return Err(bad(&format!("part outside 1..={NUM_PARTS} or rows not grouped by part")));
        }
        if row.iter().skip(1).any(|&v| v < 1) {
            return Err(bad("pixel coordinates are 1-based"));
        }
        last_part = row[0];
        out.part.push(row[0] as u8);
        out.pixel_i.push([row[1] as u32 - 1, row[2] as u32 - 1]);
        out.pixel_j.push([row[3] as u32 - 1, row[4] as u32 - 1]);
    }
    Ok(out)
}

/// Writes the correspondences of (i, j) in the requested form(s).
pub fn write_correspondences(root: &Path, i: &str, j: &str, c: &Correspondences, form: Form) -> Result<(), FileError> {
    std::fs::create_dir_all(corr_dir(root)).map_err(|e| FileError::new(corr_dir(root), e))?;
    let rows: Vec<[i64; 5]> = (0..c.len())
        .map(|k| {
            let (pi, pj) = (c.pixel_i[k], c.pixel_j[k]);
            [c.part[k] as i64, pi[0] as i64 + 1, pi[1] as i64 + 1, pj[0] as i64 + 1, pj[1] as i64 + 1]
        })
        .collect();
    if form.text() {
        let (corrs, limits) = corr_text_paths(root, i, j);
        let body: String = rows.iter().map(|r| format!("{},{},{},{},{}\n", r[0], r[1], r[2], r[3], r[4])).collect();
        hdnet_formats::write_atomic(&corrs, body.as_bytes())?;
        let limit: String = c
            .part_ranges()
            .iter()
            .enumerate()
            .map(|(p, r)| {
                if r.is_empty() {
                    format!("{},-1,-1\n", p + 1)
                } else {
                    format!("{},{},{}\n", p + 1, r.start, r.end - 1)
                }
            })
            .collect();
        hdnet_formats::write_atomic(&limits, limit.as_bytes())?;
    }
    if form.binary() {
        let table = Array2::from_shape_fn((rows.len(), 5), |(r, k)| rows[r][k] as i32);
        npy::write(corr_npy_path(root, i, j), &table)?;
    }
    Ok(())
}

/// Writes `correspondences/corr_mat.txt`.
pub fn write_corr_mat(root: &Path, rows: &[(String, Vec<String>)]) -> Result<(), FileError> {
    let body: String = rows
        .iter()
        .map(|(f, partners)| {
            let mut line = f.trim_start_matches('0').to_string();
            if line.is_empty() {
                line.push('0');
            }
            for p in partners {
                let p = p.trim_start_matches('0');
                line.push(',');
                line.push_str(if p.is_empty() { "0" } else { p });
            }
            line + "\n"
        })
        .collect();
    let dir = root.join(dirs::CORRESPONDENCES);
    std::fs::create_dir_all(&dir).map_err(|e| FileError::new(&dir, e))?;
    hdnet_formats::write_atomic(&dir.join("corr_mat.txt"), body.as_bytes())
}

/// Writes normals (H, W, 3) of frame `name` into `DIR` (e.g. `pred_normals/`) in the given form:
/// `NAME_{1,2,3}.txt` (`%.5f`, space separated, as the original) and/or `NAME.npy`.
pub fn write_normals(dir: &Path, name: &str, normals: &Array3<f32>, form: Form) -> Result<(), FileError> {
    std::fs::create_dir_all(dir).map_err(|e| FileError::new(dir, e))?;
    if form.text() {
        for k in 0..3 {
            text::write_matrix(dir.join(format!("{name}_{}.txt", k + 1)), &normals.index_axis(Axis(2), k).to_owned())?;
        }
    }
    if form.binary() {
        npy::write(dir.join(format!("{name}.npy")), normals)?;
    }
    Ok(())
}

/// The camera of frame `name`: `camera/NAME.json` where the folder has one, else the original's.
pub fn read_camera(root: &Path, name: &str) -> Result<Camera, FileError> {
    Ok(camera_file(root, name)?.unwrap_or_else(Camera::original))
}

/// Frame `name`'s own camera (`camera/NAME.json`), if it has one.
fn camera_file(root: &Path, name: &str) -> Result<Option<Camera>, FileError> {
    let path = root.join(dirs::CAMERA).join(format!("{name}.json"));
    if !path.exists() {
        return Ok(None);
    }
    read_camera_json(&path).map(Some)
}

/// A camera stored as JSON (the fields of [`Camera`]).
pub fn read_camera_json(path: &Path) -> Result<Camera, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError::new(path, e))?;
    let camera: Camera = serde_json::from_str(&text).map_err(|e| FileError::new(path, format!("not a camera: {e}")))?;
    if !camera.is_valid() {
        return Err(FileError::new(path, "a camera needs finite values and positive focal lengths and scaling"));
    }
    Ok(camera)
}

/// Writes `camera` as JSON (atomically).
pub fn write_camera_json(path: &Path, camera: &Camera) -> Result<(), FileError> {
    let text = serde_json::to_string_pretty(camera).map_err(|e| FileError::new(path, e))?;
    write_atomic(path, text.as_bytes())
}

/// Writes `camera` as `camera/NAME.json` under `root`.
pub fn write_camera(root: &Path, name: &str, camera: &Camera) -> Result<(), FileError> {
    let dir = root.join(dirs::CAMERA);
    std::fs::create_dir_all(&dir).map_err(|e| FileError::new(&dir, e))?;
    write_camera_json(&dir.join(format!("{name}.json")), camera)
}

/// Writes a depth map (H, W) of frame `name` into `DIR` as `NAME.txt` (comma separated, as the
/// original labelled data) and/or `NAME.npy`.
pub fn write_depth(dir: &Path, name: &str, depth: &Array2<f32>, form: Form) -> Result<(), FileError> {
    std::fs::create_dir_all(dir).map_err(|e| FileError::new(dir, e))?;
    if form.text() {
        let body = text::format_matrix(depth).replace(' ', ",");
        hdnet_formats::write_atomic(&dir.join(format!("{name}.txt")), body.as_bytes())?;
    }
    if form.binary() {
        npy::write(dir.join(format!("{name}.npy")), depth)?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn frames_far_apart_are_other_videos_and_new_shots_are_numbered_so() {
        let names: Vec<String> = [0, 1, 2, 40, 139, 239, 240].map(frame_name).to_vec();
        let split: Vec<Vec<&str>> = videos(&names).iter().map(|v| v.iter().map(String::as_str).collect()).collect();
        assert_eq!(split, [vec!["0000000", "0000001", "0000002", "0000040", "0000139"], vec!["0000239", "0000240"]]);
        assert!(videos(&[]).iter().all(|v| v.is_empty()));
        let dir = tempfile::tempdir().unwrap();
        let mut numbering = FrameNumbering::default();
        let named: Vec<String> = [true, false, false, true, false].map(|new_shot| numbering.next(new_shot)).to_vec();
        assert_eq!(named, ["0000000", "0000001", "0000002", "0000102", "0000103"]);
        // Frames added to a folder that holds some start another video.
        std::fs::create_dir_all(dir.path().join(dirs::COLOR)).unwrap();
        std::fs::write(frame_png(dir.path(), dirs::COLOR, "0000103"), b"").unwrap();
        assert_eq!(FrameNumbering::after(dir.path()).next(true), "0000203");
    }

    /// Writes a PNG from an (H, W, C) array of 0..255 values.
    pub fn save_png(path: &Path, img: &Array3<f32>) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let (h, w, c) = img.dim();
        let bytes: Vec<u8> = img.iter().map(|&v| v as u8).collect();
        let color = if c == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
        image::save_buffer(path, &bytes, w as u32, h as u32, color).unwrap();
    }

    /// A tiny frame: person in the left 3 columns of a 4x5 image, part 2 there.
    pub fn write_images(root: &Path, name: &str) {
        let rgb = Array3::from_shape_fn((4, 5, 3), |(r, c, k)| (r * 50 + c * 10 + k) as f32);
        let mask = Array3::from_shape_fn((4, 5, 1), |(_, c, _)| if c < 3 { 255.0 } else { 0.0 });
        let dp = Array3::from_shape_fn((4, 5, 3), |(r, c, k)| match k {
            2 if c < 3 => 2.0,
            2 => 0.0,
            0 => (r * 60) as f32,
            _ => (c * 60) as f32,
        });
        save_png(&root.join(format!("color_WO_bg/{name}.png")), &rgb);
        save_png(&root.join(format!("mask/{name}.png")), &mask);
        save_png(&root.join(format!("densepose/{name}.png")), &dp);
    }

    fn normals() -> Array3<f32> {
        Array3::from_shape_fn((4, 5, 3), |(_, _, k)| if k == 2 { -1.0 } else { 0.0 })
    }

    /// A ball of radius 0.3 m, 1.8 m in front of a 64x64 photo crop: its depth and its exact
    /// normals, where the rays hit it.
    fn ball(camera: &Camera) -> (Array2<f32>, Array3<f32>) {
        let (centre, radius) = ([0.05f64, -0.03, 1.8], 0.3f64);
        let mut depth = Array2::zeros((64, 64));
        let mut normals = Array3::zeros((64, 64, 3));
        for ((r, c), d) in depth.indexed_iter_mut() {
            let ray = camera.ray(r as f32, c as f32).map(f64::from);
            // |t ray - centre|^2 = radius^2, the nearer root; ray z = 1, so t is the depth.
            let (a, b) =
                (ray.iter().map(|v| v * v).sum::<f64>(), ray.iter().zip(centre).map(|(v, c)| v * c).sum::<f64>());
            let q = b * b - a * (centre.iter().map(|v| v * v).sum::<f64>() - radius * radius);
            if q > 0.0 {
                let t = (b - q.sqrt()) / a;
                *d = t as f32;
                for k in 0..3 {
                    normals[(r, c, k)] = ((t * ray[k] - centre[k]) / radius) as f32;
                }
            }
        }
        (depth, normals)
    }

    /// The mean angle (degrees) between the normals of `frame`'s depth through its camera and its
    /// ground-truth normals.
    fn depth_normal_error(frame: &LabelledFrame) -> f64 {
        let (depth, mask) = (hdnet_formats::row_major(&frame.depth), hdnet_formats::row_major(&frame.person.mask));
        let from_depth = hdnet_geometry::normals_of_depth(&depth, &mask, 64, 64, &frame.camera);
        let angles: Vec<f64> = frame
            .person
            .mask
            .indexed_iter()
            .filter(|(_, m)| **m > 0.0)
            .map(|((r, c), _)| {
                let n = from_depth[r * 64 + c];
                let dot: f32 = (0..3).map(|k| n[k] * frame.normals[(r, c, k)]).sum();
                f64::from(dot.clamp(-1.0, 1.0)).acos().to_degrees()
            })
            .collect();
        angles.iter().sum::<f64>() / angles.len() as f64
    }

    #[test]
    fn a_frame_with_its_own_camera_keeps_its_shape_when_shifted_to_4_m() {
        let camera = Camera::photo_crop(700.0, [500.0, 400.0], [460.0, 370.0], 96.0, 64);
        let (depth, normals) = ball(&camera);
        let mask = depth.mapv(|d| if d > 0.0 { 1.0 } else { 0.0 });
        let person = PersonImage::new("ball", &Array3::zeros((64, 64, 3)), mask.clone(), Array3::zeros((64, 64, 3)));
        let own = LabelledFrame::preprocessed(person.clone(), Some(camera), &depth, normals.clone()).unwrap();
        let kept = LabelledFrame { camera, ..own.clone() };
        let unshifted = LabelledFrame { depth: depth.clone(), camera, ..own.clone() };
        let (moved, stale, truth) =
            (depth_normal_error(&own), depth_normal_error(&kept), depth_normal_error(&unshifted));
        println!(
            "depth normals vs the ball's: unshifted {truth:.2}, shifted with the moved camera {moved:.2}, with the photo's {stale:.2} deg"
        );
        // The finite differences alone err by `truth` (the rim); moving the camera adds little,
        // keeping the photo's camera at twice the distance flattens the ball.
        assert!(moved < truth + 1.0, "{moved} vs {truth}");
        assert!(stale > moved + 5.0, "{stale} vs {moved}");
        let (p, _) = mask.indexed_iter().find(|(_, m)| **m > 0.0).unwrap();
        let median = DEPTH_MEDIAN - (own.depth[p] - depth[p]);
        assert!(
            (own.camera.fx / camera.fx - DEPTH_MEDIAN / median).abs() < 1e-4,
            "moved from the median depth {median}"
        );
        let original = LabelledFrame::preprocessed(person, None, &depth, normals).unwrap();
        assert_eq!(original.camera, Camera::original());
    }

    #[test]
    fn labelled_round_trip_text_and_binary() {
        for form in [Form::Original, Form::Binary] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            write_images(root, "0000000");
            // depths 2..5.8; one on-mask pixel out of range (9.0) is dropped from the mask
            let mut depth = Array2::from_shape_fn((4, 5), |(r, c)| 2.0 + (r * 5 + c) as f32 * 0.2);
            depth[(0, 0)] = 9.0;
            write_depth(&root.join("depth"), "0000000", &depth, form).unwrap();
            write_normals(&root.join("normal"), "0000000", &normals(), form).unwrap();
            let f = read_labelled(root, "0000000").unwrap();
            assert_eq!(f.person.mask[(0, 0)], 0.0);
            assert_eq!(f.person.mask[(1, 1)], 1.0);
            assert_eq!(f.person.mask[(1, 4)], 0.0);
            // on-mask depths (minus the 9.0): 11 values; median is the 6th smallest.
            let mut on: Vec<f32> =
                depth.iter().zip(f.person.mask.iter()).filter(|(_, m)| **m > 0.0).map(|(d, _)| *d).collect();
            on.sort_by(f32::total_cmp);
            let med = on[on.len() / 2];
            assert!((f.depth[(1, 1)] - (depth[(1, 1)] + 4.0 - med)).abs() < 1e-4, "{form:?}");
            assert_eq!(f.depth[(1, 4)], 0.0);
            assert_eq!(f.person.image[(1, 4, 0)], 255.0);
            assert_eq!(f.normals[(1, 4, 2)], 0.0);
            assert_eq!(f.normals[(1, 1, 2)], -1.0);
        }
    }

    #[test]
    fn malformed_labelled_inputs_name_file_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_images(root, "0000000");
        let err = read_labelled(root, "0000000").unwrap_err().to_string();
        assert!(err.contains("depth/0000000.txt"), "{err}");
        std::fs::create_dir_all(root.join("depth")).unwrap();
        std::fs::write(root.join("depth/0000000.txt"), "1,2,3\n").unwrap();
        let err = read_labelled(root, "0000000").unwrap_err().to_string();
        assert!(err.contains("0000000.txt: shape [1, 3], expected [4, 5]"), "{err}");
        std::fs::write(root.join("depth/0000000.txt"), "1,2,x,4,5\n".repeat(4)).unwrap();
        let err = read_labelled(root, "0000000").unwrap_err().to_string();
        assert!(err.contains("line 1: 'x' is not a number"), "{err}");
        save_png(&root.join("mask/0000000.png"), &Array3::zeros((4, 5, 1)));
        let err = read_labelled(root, "0000000").unwrap_err().to_string();
        assert!(err.contains("mask/0000000.png: empty mask"), "{err}");
        save_png(&root.join("mask/0000000.png"), &Array3::from_elem((4, 5, 1), 255.0));
        let dp = Array3::from_shape_fn((4, 5, 3), |(_, _, k)| if k == 2 { 30.0 } else { 0.0 });
        save_png(&root.join("densepose/0000000.png"), &dp);
        let err = read_labelled(root, "0000000").unwrap_err().to_string();
        assert!(err.contains("densepose/0000000.png: not a DensePose IUV image: part index 30"), "{err}");
    }

    #[test]
    fn non_finite_ground_truth_and_predicted_normals_name_their_file() {
        for form in [Form::Original, Form::Binary] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            write_images(root, "0000000");
            let mut depth = Array2::from_elem((4, 5), 3.0);
            depth[(2, 1)] = f32::INFINITY;
            write_depth(&root.join("depth"), "0000000", &depth, form).unwrap();
            write_normals(&root.join("normal"), "0000000", &normals(), form).unwrap();
            let ext = if form == Form::Binary { "npy" } else { "txt" };
            let err = read_labelled(root, "0000000").unwrap_err().to_string();
            assert!(err.contains(&format!("depth/0000000.{ext}: holds a non-finite value (inf)")), "{err}");
            write_depth(&root.join("depth"), "0000000", &Array2::from_elem((4, 5), 3.0), form).unwrap();
            let mut bad = normals();
            bad[(1, 1, 0)] = f32::NAN;
            write_normals(&root.join("normal"), "0000000", &bad, form).unwrap();
            let err = read_labelled(root, "0000000").unwrap_err().to_string();
            let file = if form == Form::Binary { "normal/0000000.npy" } else { "normal/0000000_1.txt" };
            assert!(err.contains(&format!("{file}: holds a non-finite value (NaN)")), "{err}");
            write_normals(&root.join("pred_normals"), "0000000", &bad, form).unwrap();
            let err = read_video_frame(root, "0000000").unwrap_err().to_string();
            assert!(err.contains("pred_normals/0000000") && err.contains("non-finite"), "{err}");
        }
    }

    #[test]
    fn the_image_of_the_wrong_size_is_the_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for folder in [dirs::COLOR, dirs::DENSEPOSE, dirs::MASK] {
            write_images(root, "0000000");
            let (channels, value) = if folder == dirs::MASK { (1, 200.0) } else { (3, 0.0) };
            save_png(&frame_png(root, folder, "0000000"), &Array3::from_elem((6, 5, channels), value));
            let err = read_video_frame(root, "0000000").unwrap_err().to_string();
            assert!(err.starts_with(&frame_png(root, folder, "0000000").display().to_string()), "{err}");
            assert!(err.contains("image is 5x6, but") && err.contains("is 5x4"), "{err}");
        }
    }

    #[test]
    fn video_frame_and_correspondences_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_images(root, "0000003");
        write_normals(&root.join("pred_normals"), "0000003", &normals(), Form::Original).unwrap();
        let f = read_video_frame(root, "0000003").unwrap();
        assert_eq!(f.normals[(0, 0, 2)], -1.0);
        assert_eq!(f.normals[(0, 4, 2)], 0.0);
        let c = Correspondences {
            part: vec![2, 2, 5],
            pixel_i: vec![[0, 0], [1, 2], [3, 3]],
            pixel_j: vec![[0, 1], [2, 2], [3, 4]],
        };
        for form in [Form::Original, Form::Binary] {
            write_correspondences(root, "0000003", "0000007", &c, form).unwrap();
            assert_eq!(read_correspondences(root, "0000003", "0000007", (4, 5)).unwrap(), c);
            let err = read_correspondences(root, "0000003", "0000007", (4, 4)).unwrap_err().to_string();
            assert!(err.contains("0000003_0000007") && err.contains("outside the 4x4 frames"), "{err}");
            std::fs::remove_dir_all(corr_dir(root)).unwrap();
        }
        write_corr_mat(root, &[("0000003".into(), vec!["0000007".into(), "0000000".into()])]).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("correspondences/corr_mat.txt")).unwrap(), "3,7,0\n");
        assert_eq!(read_corr_mat(root).unwrap(), vec![("0000003".into(), vec!["0000007".into(), "0000000".into()])]);
    }
}
