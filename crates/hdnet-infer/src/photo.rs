//! A photo's person made ready for the networks: the mask (given, a cut-out's alpha, or found
//! by hdnet-segment), the square crop around them at 256x256, and their real size (`--extent`,
//! the pose model's metric keypoints pooled over a video's shot, or an assumption), which fixes
//! the camera of the meshes and of the refinement.

use std::path::{Path, PathBuf};

use hdnet_eval::joints::{Joint, JointPair, joint_pairs};
use hdnet_formats::crop::{Bounds, Crop};
use hdnet_formats::images::{PersonImage, read_iuv, read_mask, read_photo};
use hdnet_formats::visual::{side_by_side, to_u8};
use hdnet_formats::{FileError, row_major};
use hdnet_geometry::{Camera, Integration};
use hdnet_model::Hdnet;
use hdnet_model::device::Device;
use hdnet_segment::person::DEFAULT_EXTENT;
use hdnet_segment::person::{Person, Segmenter, metres_per_pixel};
use hdnet_segment::video::Shot;
use image::RgbImage;
use ndarray::{Array2, Array3, Axis};

/// The networks take 256x256 crops.
pub const IMAGE_SIZE: (usize, usize) = (256, 256);
/// Share of the crop's side a person spans when the weights do not say (the original's
/// tiktok-style crops).
pub const DEFAULT_FILL: f32 = 0.9;

/// A photo as read, before its person is known: its colours laid on white and where its
/// person's mask will come from.
pub struct PhotoFile {
    pub path: PathBuf,
    pub rgb: Array3<f32>,
    pub mask: MaskSource,
}

/// Where a photo's mask will come from, decided once when it is read: `--mask` over a cut-out's
/// alpha over a search by hdnet-segment.
pub enum MaskSource {
    Given(PathBuf),
    CutOut(Array2<f32>),
    Search,
}

impl PhotoFile {
    /// The photo at `path`, its mask read from `mask` when given.
    pub fn read(path: &Path, mask: Option<&Path>) -> Result<Self, FileError> {
        let (rgb, alpha) = read_photo(path)?;
        let mask = match (mask, alpha) {
            (Some(given), _) => MaskSource::Given(given.to_path_buf()),
            (None, Some(alpha)) if alpha.iter().all(|&a| a == 0.0) => {
                return Err(FileError::new(
                    path,
                    "no opaque pixel (alpha over 100), and a cut-out's person is its opaque part",
                ));
            }
            (None, Some(alpha)) => MaskSource::CutOut(alpha),
            (None, None) => MaskSource::Search,
        };
        Ok(PhotoFile { path: path.to_path_buf(), rgb, mask })
    }

    /// Whether hdnet will search this photo for its person.
    pub fn needs_search(&self) -> bool {
        matches!(self.mask, MaskSource::Search)
    }
}

/// A network-sized input and, for photos, how to map results back.
pub struct Input {
    pub sample: PersonImage,
    pub photo: Option<PhotoFrame>,
}

/// A photo's crop, its mask at its resolution, where that came from, its person's framing, and
/// the photo within the crop at the power of two at or above its resolution, up to
/// [`MAX_TEXTURE`] pixels a side (the GLB's texture: the photo's detail, which the networks'
/// 256 pixels, and so one colour per vertex, blur).
pub struct PhotoFrame {
    pub crop: Crop,
    pub mask: Array2<f32>,
    pub mask_from: MaskFrom,
    pub framing: Framing,
    pub texture: RgbImage,
}

/// The largest side of a photo's texture: sharper than the mesh's 256 vertices a side by four,
/// and a JPEG of a few hundred kB. Sides are powers of two, which every viewer can mipmap.
pub const MAX_TEXTURE: usize = 1024;

/// Where a photo's mask comes from.
pub enum MaskFrom {
    /// `--mask`.
    Given,
    /// The photo's alpha channel (a cut-out).
    CutOut,
    /// The person hdnet found (written out with the results).
    Found(Person),
}

/// How a photo's person is framed for the networks and how large they really are.
#[derive(Clone, Copy)]
pub struct Framing {
    /// Share of the crop's side the person's larger extent spans.
    pub fill: f32,
    /// That extent in metres.
    pub extent: f32,
    pub sized_by: SizedBy,
}

/// Where a photo's person's size comes from.
#[derive(Clone, Copy, PartialEq)]
pub enum SizedBy {
    /// `--extent`.
    User,
    /// The pose model's metric keypoints against the photo's ([`metres_per_pixel`]).
    PoseModel,
    /// [`DEFAULT_EXTENT`].
    Assumption,
}

/// The run's framing of photos: `--fill` (or the weights'), and `--extent` when given.
#[derive(Clone, Copy)]
pub struct PhotoSettings {
    pub fill: f32,
    pub extent: Option<f32>,
}

impl PhotoSettings {
    /// A photo's framing: its person's size as `--extent` gives it, else as `measure` finds it
    /// (called only then), else [`DEFAULT_EXTENT`].
    pub fn framing(&self, measure: impl FnOnce() -> Option<f32>) -> Framing {
        let (extent, sized_by) = match self.extent {
            Some(e) => (e, SizedBy::User),
            None => match measure() {
                Some(m) => (m, SizedBy::PoseModel),
                None => (DEFAULT_EXTENT, SizedBy::Assumption),
            },
        };
        Framing { fill: self.fill, extent, sized_by }
    }
}

impl Framing {
    /// Metres per pixel of the networks' input at the person.
    fn footprint(&self) -> f32 {
        self.extent / (self.fill * IMAGE_SIZE.0 as f32)
    }

    /// `refine` for a photo: its slopes' scale fitted to the depth unless the user gave the size.
    pub fn refinement(&self, refine: Integration) -> Integration {
        Integration { fit_scale: self.sized_by != SizedBy::User, ..refine }
    }

    /// The camera that gives the crop's person its metric size at `depth`'s distance.
    pub fn camera(&self, depth: &Array2<f32>, mask: &Array2<f32>) -> Camera {
        Camera::for_crop(&row_major(depth), &row_major(mask), self.footprint(), IMAGE_SIZE.0)
    }
}

/// Finds the person of photos without masks (the models loaded at the first), following a
/// video's frames as `hdnet segment` does, and sizes them steadily over a shot.
pub struct Finder {
    segmenter: Option<Segmenter>,
    device: Device,
    shot: Shot,
}

impl Finder {
    /// A finder on `device` (its models are loaded at the first photo that needs them).
    pub fn new(device: Device) -> Self {
        Finder { segmenter: None, device, shot: Shot::new() }
    }

    fn segmenter(&mut self) -> &Segmenter {
        loaded(&mut self.segmenter, &self.device)
    }

    fn find(&mut self, rgb: &Array3<f32>, image: &Path) -> Result<Person, FileError> {
        loaded(&mut self.segmenter, &self.device).follow(rgb, &mut self.shot).map_err(|e| FileError::new(image, e))
    }

    /// The metres the person under `mask` spans, by the pose model (the keypoints `found` with
    /// the person, or the pose model run on the mask's region) pooled over the shot's frames.
    fn measure(&mut self, rgb: &Array3<f32>, mask: &Array2<f32>, found: Option<&Person>) -> Option<f32> {
        let bounds = Bounds::of(mask)?;
        let measured = match found {
            Some(person) => metres_per_pixel(&person.keypoints),
            None => metres_per_pixel(&self.segmenter().keypoints_within(rgb, bounds)),
        };
        Some(extent(self.shot.size(measured)?, bounds))
    }
}

/// The segmenter in `slot`, loaded on `device` at the first call (a borrow of the slot alone, so
/// that the finder's shot can be borrowed beside it).
fn loaded<'a>(slot: &'a mut Option<Segmenter>, device: &Device) -> &'a Segmenter {
    slot.get_or_insert_with(|| Segmenter::new(device))
}

/// The metres a person spans at `metres_per_pixel`: their mask's longer side.
fn extent(metres_per_pixel: f32, bounds: Bounds) -> f32 {
    metres_per_pixel * bounds.longer_side() as f32
}

/// A photo, its mask (found when not given) and maybe DensePose, cropped around the person and
/// resized to 256.
pub fn load_photo(
    name: &str,
    photo: PhotoFile,
    dp: Option<&Path>,
    needs_dp: bool,
    settings: PhotoSettings,
    finder: &mut Finder,
) -> Result<Input, FileError> {
    let PhotoFile { path: image, rgb, mask } = photo;
    let image = image.as_path();
    let size = (rgb.dim().0, rgb.dim().1);
    finder.shot.next_frame(&rgb);
    // Errors about the mask name the file it came from: its own, or the photo.
    let (mask, mask_from, mask_file) = match mask {
        MaskSource::Given(path) => (read_mask(&path, Some(size))?, MaskFrom::Given, Some(path)),
        MaskSource::CutOut(alpha) => (alpha, MaskFrom::CutOut, None),
        MaskSource::Search => {
            let person = finder.find(&rgb, image)?;
            (person.mask.clone(), MaskFrom::Found(person), None)
        }
    };
    let mask_path = mask_file.as_deref().unwrap_or(image);
    let iuv = match dp {
        Some(dp) => Some(read_iuv(dp, Some(size))?),
        None if needs_dp => {
            return Err(FileError::new(image, "this depth net needs DensePose IUV (--dp); the bundled model does not"));
        }
        None => None,
    };
    let (sample, crop) = network_input(name, &rgb, &mask, iuv.as_ref(), settings.fill, mask_path)?;
    let found = match &mask_from {
        MaskFrom::Found(person) => Some(person),
        MaskFrom::Given | MaskFrom::CutOut => None,
    };
    let framing = settings.framing(|| finder.measure(&rgb, &mask, found));
    let texture =
        side_by_side(&[to_u8(&crop.resample(&rgb, crop.side.next_power_of_two().min(MAX_TEXTURE), 255.0, true))]);
    Ok(Input { sample, photo: Some(PhotoFrame { crop, mask, mask_from, framing, texture }) })
}

/// The networks' 256x256 input of a photo: the square around the person (see [`Crop::around`])
/// resized, and that square. `mask_path` names the mask in errors.
fn network_input(
    name: &str,
    rgb: &Array3<f32>,
    mask: &Array2<f32>,
    iuv: Option<&Array3<f32>>,
    fill: f32,
    mask_path: &Path,
) -> Result<(PersonImage, Crop), FileError> {
    let crop = Crop::around(mask, fill).ok_or_else(|| FileError::new(mask_path, "empty mask"))?;
    let n = IMAGE_SIZE.0;
    let small_mask = crop.resample(&mask.clone().insert_axis(Axis(2)), n, 0.0, false).index_axis_move(Axis(2), 0);
    if small_mask.iter().all(|&m| m == 0.0) {
        return Err(FileError::new(mask_path, "the person is too small to see at 256x256"));
    }
    let iuv = iuv.map_or_else(|| Array3::zeros((n, n, 3)), |i| crop.resample(i, n, 0.0, false));
    Ok((PersonImage::new(name, &crop.resample(rgb, n, 255.0, true), small_mask, iuv), crop))
}

/// The pairs of joints of the person in the photo at `path` that `hdnet eval --photos` scores:
/// the person as hdnet finds them (a cut-out's person its opaque part, as `infer` takes it),
/// ordered front-to-back by the depth `hdnet` gives them as `infer` does, or by a flat depth
/// (the baseline) without a model.
pub fn photo_joint_pairs(
    path: &Path,
    segmenter: &Segmenter,
    hdnet: Option<&Hdnet>,
    refine: Option<Integration>,
) -> Result<Vec<JointPair>, FileError> {
    let (rgb, alpha) = read_photo(path)?;
    let mut person = segmenter.find(&rgb, None).map_err(|e| FileError::new(path, e))?;
    if let Some(alpha) = alpha {
        person.mask = alpha;
    }
    let depth = match hdnet {
        Some(hdnet) => photo_depth(hdnet, path, &rgb, &person, refine)?,
        None => person.mask.mapv(|m| m * 4.0),
    };
    let joints: Vec<Joint> = person
        .keypoints
        .iter()
        .map(|k| Joint { name: k.name, x: k.x, y: k.y, visibility: k.visibility, depth: k.world[2] })
        .collect();
    Ok(joint_pairs(&depth, &person.mask, &joints))
}

/// The depth `hdnet infer` gives a photo's `person` (as hdnet found them; their mask may be a
/// cut-out's alpha), at the photo's resolution, zero off their mask (`image` names the photo in
/// errors).
fn photo_depth(
    hdnet: &Hdnet,
    image: &Path,
    rgb: &Array3<f32>,
    person: &Person,
    refine: Option<Integration>,
) -> Result<Array2<f32>, FileError> {
    let mask = &person.mask;
    if hdnet.needs_densepose() {
        return Err(FileError::new(image, "this depth net needs DensePose IUV, which photos here do not have"));
    }
    let settings = PhotoSettings { fill: person_fill(hdnet, None), extent: None };
    let (sample, crop) = network_input("photo", rgb, mask, None, settings.fill, image)?;
    let prediction = hdnet.predict(&[&sample]).remove(0);
    let framing = settings.framing(|| Some(extent(metres_per_pixel(&person.keypoints)?, Bounds::of(mask)?)));
    let camera = framing.camera(&(&prediction.depth * &sample.mask), &sample.mask);
    let depth = prediction.refined_depth(&sample.mask, &camera, refine.map(|r| framing.refinement(r)));
    Ok(crop.paste_back_map(&depth, &sample.mask, mask))
}

/// The share of the crop's side a person spans: `--fill`, else what the weights state, else 0.9.
pub fn person_fill(hdnet: &Hdnet, fill: Option<f32>) -> f32 {
    fill.or_else(|| hdnet.notes.get("person_fill").and_then(|f| f.parse().ok())).unwrap_or(DEFAULT_FILL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photos_size_comes_from_the_user_then_the_pose_model_then_the_assumption() {
        let measured = PhotoSettings { fill: 0.75, extent: None }.framing(|| Some(1.2));
        assert!(measured.sized_by == SizedBy::PoseModel && measured.extent == 1.2);
        // 1.2 m over 75% of 256 pixels.
        assert!((measured.footprint() - 0.00625).abs() < 1e-7);
        let given = PhotoSettings { fill: 0.75, extent: Some(1.6) }.framing(|| panic!("measured though given"));
        assert!(given.sized_by == SizedBy::User && given.extent == 1.6);
        let assumed = PhotoSettings { fill: 0.9, extent: None }.framing(|| None);
        assert!(assumed.sized_by == SizedBy::Assumption && assumed.extent == DEFAULT_EXTENT);
        // Only a size the user gave is trusted over the refinement's own fit.
        assert!(!given.refinement(Integration::default()).fit_scale);
        assert!(measured.refinement(Integration::default()).fit_scale);
    }

    #[test]
    fn a_fully_transparent_cut_out_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clear.png");
        // Every pixel transparent black.
        image::RgbaImage::new(30, 40).save(&path).unwrap();
        let Err(e) = PhotoFile::read(&path, None) else { panic!("a photo with no opaque pixel was taken") };
        assert_eq!(
            e.to_string(),
            format!("{}: no opaque pixel (alpha over 100), and a cut-out's person is its opaque part", path.display())
        );
        // A mask given beside it is the person instead: the photo is taken.
        let mask = dir.path().join("mask.png");
        image::GrayImage::from_pixel(30, 40, image::Luma([255])).save(&mask).unwrap();
        assert!(matches!(PhotoFile::read(&path, Some(&mask)).unwrap().mask, MaskSource::Given(_)));
    }
}
