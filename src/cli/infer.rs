//! `hdnet infer`: HDNet on a folder in the original test-data layout (256x256, the original's
//! outputs plus npy arrays and a coloured PLY mesh), or on photos of any size (a photo, or a
//! folder of photos or video frames, with masks or with the person found by hdnet-segment): a
//! square crop around the person is resized to 256, predicted, and the results are also pasted
//! back at the photo's resolution.
//! Without `--weights` the model bundled in the binary is used.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use hdnet_formats::crop::{Bounds, Crop};
use hdnet_formats::images::{PersonImage, list_photos, list_samples, read_iuv, read_mask, read_photo};
use hdnet_formats::item::ItemWriter;
use hdnet_formats::{FileError, mesh, npy, row_major, text, visual};
use hdnet_geometry::{Camera, Integration};
use hdnet_model::device::Device;
use hdnet_model::{Hdnet, Prediction};
use hdnet_segment::person::{Person, Roi, Segmenter, metres_per_pixel};
use hdnet_segment::video::ShotScale;
use ndarray::{Array2, Array3, Axis};

use super::batch::Batch;

/// The networks take 256x256 crops.
const IMAGE_SIZE: (usize, usize) = (256, 256);
/// Share of the crop's side a person spans when the weights do not say (the original's
/// tiktok-style crops).
const DEFAULT_FILL: f32 = 0.9;
/// A standing adult's height in metres: a photo's person's larger extent when neither
/// `--extent` nor the pose model tells.
const DEFAULT_EXTENT: f32 = 1.75;

#[derive(clap::Args)]
pub struct Args {
    /// A photo (PNG or JPEG, any size); or a folder of photos or video frames; or a folder with
    /// NAME_img.png, NAME_mask.png and NAME_dp.png files (256x256, the original's test layout).
    input: PathBuf,
    /// The person's mask for a photo (grey, person > 100), or a folder of masks named as the
    /// frames (same stem, PNG). Without it a cut-out PNG (transparent background) is its own
    /// mask, and in any other photo hdnet finds the person itself (`hdnet segment`) and writes
    /// NAME_mask.png and NAME_keypoints.json with the results.
    #[arg(long)]
    mask: Option<PathBuf>,
    /// DensePose IUV for a photo, or a folder named as the frames; needed by depth nets with
    /// DensePose inputs (the original's), not by the bundled model.
    #[arg(long)]
    dp: Option<PathBuf>,
    /// hdnet .safetensors weights, or a folder with the original TF1 checkpoints (default: the
    /// bundled model).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Output folder (default: INPUT/infer_out for folders, as the original; next to a photo).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Share of the crop's side the person's larger extent spans, for photos (default: as the
    /// weights state, else 0.9).
    #[arg(long)]
    fill: Option<f32>,
    /// The real size in metres of the person's larger extent in a photo: the meshes' width
    /// against their depth (default: measured by the pose model's metric keypoints, pooled over
    /// the last frames of a video's shot, else 1.75, a standing adult). Without it the
    /// refinement (`--refine`) takes the size of a pixel from the depth net's relief instead.
    #[arg(long)]
    extent: Option<f32>,
    /// Render each predicted mesh turning around (NAME_turntable.gif): done by default for a
    /// single photo; this asks for it for every image of a folder too.
    #[arg(long, conflicts_with = "no_turntable")]
    turntable: bool,
    /// No turntable GIF, not even for a single photo.
    #[arg(long)]
    no_turntable: bool,
    #[command(flatten)]
    refine: super::RefineArgs,
    /// cpu, or wgpu[:ADAPTER] / vulkan[:ADAPTER] / cuda[:N] when built with those features.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Images per forward pass (results do not depend on it).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Replace outputs that already exist (otherwise such an image is reported and skipped).
    #[arg(long)]
    overwrite: bool,
}

/// Where one input image comes from.
enum Source {
    /// NAME in a folder of the original test-data layout.
    Layout { dir: PathBuf, name: String },
    /// A photo of any size with its mask (found by hdnet when `None`) and maybe DensePose.
    Photo { image: PathBuf, mask: Option<PathBuf>, dp: Option<PathBuf> },
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::Layout { name, .. } => name.clone(),
            Source::Photo { image, .. } => {
                image.file_stem().map_or_else(String::new, |s| s.to_string_lossy().into_owned())
            }
        }
    }
}

/// A network-sized input and, for photos, how to map results back.
struct Loaded {
    sample: PersonImage,
    photo: Option<PhotoFrame>,
}

struct PhotoFrame {
    crop: Crop,
    mask: Array2<f32>,
    mask_from: MaskFrom,
    framing: Framing,
}

/// Where a photo's mask comes from.
enum MaskFrom {
    /// `--mask`.
    Given,
    /// The photo's alpha channel (a cut-out).
    CutOut,
    /// The person hdnet found (written out with the results).
    Found(Person),
}

/// How a photo's person is framed for the networks and how large they really are.
#[derive(Clone, Copy)]
struct Framing {
    /// Share of the crop's side the person's larger extent spans.
    fill: f32,
    /// That extent in metres.
    extent: f32,
    sized_by: SizedBy,
}

/// Where a photo's person's size comes from.
#[derive(Clone, Copy, PartialEq)]
enum SizedBy {
    /// `--extent`.
    User,
    /// The pose model's metric keypoints against the photo's ([`metres_per_pixel`]).
    PoseModel,
    /// [`DEFAULT_EXTENT`].
    Assumption,
}

/// The run's framing of photos: `--fill` (or the weights'), and `--extent` when given.
#[derive(Clone, Copy)]
struct PhotoSettings {
    fill: f32,
    extent: Option<f32>,
}

impl PhotoSettings {
    /// A photo's framing: its person's size as `--extent` gives it, else as `measure` finds it
    /// (called only then), else [`DEFAULT_EXTENT`].
    fn framing(&self, measure: impl FnOnce() -> Option<f32>) -> Framing {
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
    fn refinement(&self, refine: Integration) -> Integration {
        Integration { fit_scale: self.sized_by != SizedBy::User, ..refine }
    }

    /// The camera that gives the crop's person its metric size at `depth`'s distance.
    fn camera(&self, depth: &Array2<f32>, mask: &Array2<f32>) -> Camera {
        Camera::for_crop(&row_major(depth), &row_major(mask), self.footprint(), IMAGE_SIZE.0)
    }
}

/// Every file written for sample NAME.
fn output_names(name: &str, photo: bool, segmented: bool, turntable: bool) -> Vec<String> {
    let mut names = vec![format!("{name}.txt")];
    names.extend((1..=3).map(|k| format!("{name}_normal_{k}.txt")));
    names.extend(
        ["_mesh.obj", "_results.png", "_depth.npy", "_normal.npy", ".ply", ".glb"].map(|s| format!("{name}{s}")),
    );
    if photo {
        names.extend(["_depth_full.npy", "_normal_full.npy", "_normal_full.png"].map(|s| format!("{name}{s}")));
    }
    if segmented {
        names.extend(["_mask.png", "_keypoints.json"].map(|s| format!("{name}{s}")));
    }
    if turntable {
        names.push(format!("{name}_turntable.gif"));
    }
    names
}

fn sources(args: &Args) -> anyhow::Result<(Vec<Source>, PathBuf)> {
    let input = &args.input;
    if !input.exists() {
        bail!("{}: file not found", input.display());
    }
    if input.is_file() {
        if args.mask.as_ref().is_some_and(|m| m.is_dir()) {
            bail!("{}: a photo's --mask is a file", input.display());
        }
        let out = args.out.clone().unwrap_or_else(|| input.parent().unwrap_or(Path::new(".")).join("infer_out"));
        return Ok((vec![Source::Photo { image: input.clone(), mask: args.mask.clone(), dp: args.dp.clone() }], out));
    }
    let out = args.out.clone().unwrap_or_else(|| input.join("infer_out"));
    let samples = list_samples(input)?;
    if args.mask.is_none() && !samples.is_empty() {
        return Ok((samples.into_iter().map(|name| Source::Layout { dir: input.clone(), name }).collect(), out));
    }
    if let Some(masks) = args.mask.as_ref().filter(|m| !m.is_dir()) {
        bail!("{}: frames in a folder need a folder of masks", masks.display());
    }
    let frames = list_photos(input)?;
    if frames.is_empty() {
        bail!("{}: no PNG or JPEG photos found", input.display());
    }
    let named = |dir: &Path, frame: &Path| dir.join(frame.file_stem().unwrap_or_default()).with_extension("png");
    let list = frames
        .iter()
        .map(|f| Source::Photo {
            image: f.clone(),
            mask: args.mask.as_ref().map(|m| named(m, f)),
            dp: args.dp.as_ref().map(|d| named(d, f)),
        })
        .collect();
    Ok((list, out))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if args.fill.is_some_and(|f| !(f > 0.05 && f <= 1.0)) {
        bail!("--fill must be in (0.05, 1]");
    }
    if args.extent.is_some_and(|e| !(e > 0.01 && e < 100.0)) {
        bail!("--extent must be in metres, between 0.01 and 100");
    }
    let (sources, out) = sources(&args)?;
    std::fs::create_dir_all(&out).with_context(|| format!("{}: cannot create the output folder", out.display()))?;
    ItemWriter::remove_stale(&out);
    let hdnet = super::load_model(args.weights.as_deref(), &args.device)?;
    let settings = PhotoSettings { fill: person_fill(&hdnet, args.fill), extent: args.extent };
    let refine = args.refine.integration(&hdnet)?;
    let turntable = args.turntable || (!args.no_turntable && args.input.is_file());

    let mut batch = Batch::new(sources.len());
    let mut finder = Finder { segmenter: None, device: hdnet.device.clone(), previous: None, shot: ShotScale::new() };
    for chunk in sources.chunks(args.batch) {
        let mut loaded = Vec::new();
        for source in chunk {
            match load_checked(source, &out, &hdnet, settings, turntable, args.overwrite, &mut finder) {
                Ok(l) => loaded.push(l),
                Err(e) => {
                    batch.fail(format!("skipped {}: {e}", source.name()));
                    batch.advance(1);
                }
            }
        }
        if loaded.is_empty() {
            continue;
        }
        let predictions = hdnet.predict(&loaded.iter().map(|l| &l.sample).collect::<Vec<_>>());
        for (l, prediction) in loaded.iter().zip(&predictions) {
            batch.working_on(&l.sample.name);
            match write_item(&out, l, prediction, refine, turntable, args.overwrite) {
                Ok(warnings) => {
                    warnings.iter().for_each(|w| batch.say(format!("warning: {}: {w}", l.sample.name)));
                    if l.photo.as_ref().is_some_and(|p| matches!(p.mask_from, MaskFrom::CutOut)) {
                        batch.row(format!("{}: the person is the photo's opaque part (a cut-out)", l.sample.name));
                    }
                    match l.photo.as_ref().map(|p| p.framing) {
                        Some(f) if f.sized_by == SizedBy::PoseModel => batch.row(format!(
                            "{}: the person's larger side is {:.2} m by the pose model (--extent sets it)",
                            l.sample.name, f.extent
                        )),
                        Some(f) if f.sized_by == SizedBy::Assumption => batch.say(format!(
                            "warning: {}: the pose model could not size the person: {} m assumed (--extent)",
                            l.sample.name, f.extent
                        )),
                        _ => {}
                    }
                }
                Err(e) => batch.fail(format!("failed {}: {e}", l.sample.name)),
            }
            batch.advance(1);
        }
    }
    println!("{} of {} images written to {}", sources.len() - batch.failed(), sources.len(), out.display());
    Ok(batch.finish())
}

/// Writes an image's outputs as one item: all of them, or none if anything fails (a full disk,
/// another run that wrote the same image first).
fn write_item(
    out: &Path,
    l: &Loaded,
    p: &Prediction,
    refine: Option<Integration>,
    turntable: bool,
    overwrite: bool,
) -> Result<Vec<String>, FileError> {
    let item = ItemWriter::new(out, &l.sample.name)?;
    let warnings = write_all(item.dir(), l, p, refine, turntable).map_err(|e| item.named_finally(e))?;
    item.commit(overwrite)?;
    Ok(warnings)
}

fn write_all(
    out: &Path,
    l: &Loaded,
    p: &Prediction,
    refine: Option<Integration>,
    turntable: bool,
) -> Result<Vec<String>, FileError> {
    let raw = &p.depth * &l.sample.mask;
    if let Some(bad) = raw.iter().find(|v| !v.is_finite()) {
        return Err(FileError::new(
            out.join(&l.sample.name),
            format!("the network produced a non-finite depth ({bad})"),
        ));
    }
    // The original layout's camera is the original's fixed assumption, not the scene's: the
    // refinement fits its slopes' scale as for a photo of unknown size.
    let (camera, refine) = match &l.photo {
        Some(photo) => (photo.framing.camera(&raw, &l.sample.mask), refine.map(|r| photo.framing.refinement(r))),
        None => (Camera::original(), refine.map(|r| Integration { fit_scale: true, ..r })),
    };
    let refined = p.refined_depth(&l.sample.mask, &camera, refine);
    let depth = &refined * &l.sample.mask;
    let mesh = colored_mesh(&l.sample, &depth, &camera);
    let warnings = write_outputs(out, &l.sample, p, &depth, &mesh)?;
    if let Some(photo) = &l.photo {
        write_photo_outputs(out, &l.sample.name, photo, &refined, &p.normals)?;
        if let MaskFrom::Found(person) = &photo.mask_from {
            person.write(out, &l.sample.name)?;
        }
    }
    if turntable {
        if mesh.faces.is_empty() {
            return Ok([warnings, vec!["no smooth surface to turn: _turntable.gif not written".to_string()]].concat());
        }
        super::render::write_turntable(&out.join(format!("{}_turntable.gif", l.sample.name)), &mesh, 36, 256)?;
    }
    Ok(warnings)
}

/// The results at the photo's resolution: depth and normals pasted back (zero off the mask).
fn write_photo_outputs(
    out: &Path,
    name: &str,
    photo: &PhotoFrame,
    depth: &Array2<f32>,
    normals: &Array3<f32>,
) -> Result<(), FileError> {
    let (h, w) = photo.mask.dim();
    let depth =
        photo.crop.paste_back(&depth.clone().insert_axis(Axis(2)), h, w).index_axis_move(Axis(2), 0) * &photo.mask;
    let mut normals = photo.crop.paste_back(normals, h, w);
    normals.axis_iter_mut(Axis(2)).for_each(|mut c| c *= &photo.mask);
    npy::write(out.join(format!("{name}_depth_full.npy")), &depth)?;
    npy::write(out.join(format!("{name}_normal_full.npy")), &normals)?;
    let colours = visual::white_off_mask(visual::normal_colors(&normals, &photo.mask), &photo.mask);
    visual::save_png(out.join(format!("{name}_normal_full.png")), &visual::side_by_side(&[colours]))
}

/// Finds the person of photos without masks (the models loaded at the first), following a
/// video's frames as `hdnet segment` does, and sizes them steadily over a shot.
struct Finder {
    segmenter: Option<Segmenter>,
    device: Device,
    previous: Option<Roi>,
    shot: ShotScale,
}

impl Finder {
    fn segmenter(&mut self) -> &Segmenter {
        self.segmenter.get_or_insert_with(|| Segmenter::new(&self.device))
    }

    fn find(&mut self, rgb: &Array3<f32>, image: &Path) -> Result<Person, FileError> {
        let previous = self.previous;
        let found = self.segmenter().find(rgb, previous).map_err(|e| FileError::new(image, e));
        self.previous = found.as_ref().ok().map(|p| p.next_roi);
        found
    }

    /// The metres the person under `mask` spans, by the pose model (the keypoints `found` with
    /// the person, or the pose model run on the mask's region) pooled over the shot's frames.
    fn measure(&mut self, rgb: &Array3<f32>, mask: &Array2<f32>, found: Option<&Person>) -> Option<f32> {
        let bounds = Bounds::of(mask)?;
        let measured = match found {
            Some(person) => metres_per_pixel(&person.keypoints),
            None => metres_per_pixel(&self.segmenter().keypoints_within(rgb, bounds)),
        };
        Some(self.shot.next(rgb, measured)? * bounds.longer_side() as f32)
    }
}

fn load_checked(
    source: &Source,
    out: &Path,
    hdnet: &Hdnet,
    settings: PhotoSettings,
    turntable: bool,
    overwrite: bool,
    finder: &mut Finder,
) -> Result<Loaded, FileError> {
    let name = source.name();
    if !overwrite {
        let photo = matches!(source, Source::Photo { .. });
        let segmented = matches!(source, Source::Photo { mask: None, .. });
        let names = output_names(&name, photo, segmented, turntable);
        if let Some(existing) = names.iter().map(|f| out.join(f)).find(|p| p.exists()) {
            return Err(FileError::new(existing, "already exists (pass --overwrite to replace it)"));
        }
    }
    match source {
        Source::Layout { dir, name } => {
            Ok(Loaded { sample: PersonImage::read_test_layout(dir, name, IMAGE_SIZE)?, photo: None })
        }
        Source::Photo { image, mask, dp } => {
            load_photo(&name, image, mask.as_deref(), dp.as_deref(), hdnet.needs_densepose(), settings, finder)
        }
    }
}

/// A photo, its mask (found when not given) and maybe DensePose, cropped around the person and
/// resized to 256.
fn load_photo(
    name: &str,
    image: &Path,
    mask_path: Option<&Path>,
    dp: Option<&Path>,
    needs_dp: bool,
    settings: PhotoSettings,
    finder: &mut Finder,
) -> Result<Loaded, FileError> {
    let (rgb, alpha) = read_photo(image)?;
    let size = (rgb.dim().0, rgb.dim().1);
    let (mask, mask_from) = match (mask_path, alpha) {
        (Some(path), _) => (read_mask(path, Some(size))?, MaskFrom::Given),
        (None, Some(alpha)) => (alpha, MaskFrom::CutOut),
        (None, None) => {
            let person = finder.find(&rgb, image)?;
            (person.mask.clone(), MaskFrom::Found(person))
        }
    };
    let mask_path = mask_path.unwrap_or(image);
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
    Ok(Loaded { sample, photo: Some(PhotoFrame { crop, mask, mask_from, framing }) })
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

/// The depth `hdnet infer` gives a photo's `person` (found by hdnet), at the photo's
/// resolution, zero off their mask (`image` names the photo in errors).
pub(super) fn photo_depth(
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
    let framing =
        settings.framing(|| Some(metres_per_pixel(&person.keypoints)? * Bounds::of(mask)?.longer_side() as f32));
    let camera = framing.camera(&(&prediction.depth * &sample.mask), &sample.mask);
    let depth = prediction.refined_depth(&sample.mask, &camera, refine.map(|r| framing.refinement(r)));
    let (h, w) = mask.dim();
    Ok(crop.paste_back(&depth.insert_axis(Axis(2)), h, w).index_axis_move(Axis(2), 0) * mask)
}

/// The share of the crop's side a person spans: `--fill`, else what the weights state, else 0.9.
pub(super) fn person_fill(hdnet: &Hdnet, fill: Option<f32>) -> f32 {
    fill.or_else(|| hdnet.notes.get("person_fill").and_then(|f| f.parse().ok())).unwrap_or(DEFAULT_FILL)
}

/// Writes every output of one image (`depth` is the prediction times the mask); returns
/// warnings for outputs that could not be made.
fn write_outputs(
    out: &Path,
    sample: &PersonImage,
    p: &Prediction,
    depth: &Array2<f32>,
    mesh: &mesh::ColoredMesh,
) -> Result<Vec<String>, FileError> {
    let name = &sample.name;
    let mask = &sample.mask;
    text::write_matrix(out.join(format!("{name}.txt")), depth)?;
    for k in 0..3 {
        let component = p.normals.index_axis(Axis(2), k).to_owned() * mask;
        text::write_matrix(out.join(format!("{name}_normal_{}.txt", k + 1)), &component)?;
    }
    mesh::write_depth2mesh_obj(out.join(format!("{name}_mesh.obj")), depth, mask)?;
    npy::write(out.join(format!("{name}_depth.npy")), depth)?;
    npy::write(out.join(format!("{name}_normal.npy")), &p.normals)?;
    mesh::write_ply(out.join(format!("{name}.ply")), mesh)?;
    mesh::write_glb(out.join(format!("{name}.glb")), mesh)?;
    let mut warnings = Vec::new();
    match visual::results_panel(&sample.image, depth, &p.normals, mask) {
        Some(panel) => visual::save_png(out.join(format!("{name}_results.png")), &panel)?,
        None => warnings.push("no positive depth on the mask: _results.png not written".to_string()),
    }
    Ok(warnings)
}

/// The depth2mesh faces over camera-space points (metres, through `camera`), coloured by the input.
fn colored_mesh(sample: &PersonImage, depth: &Array2<f32>, camera: &Camera) -> mesh::ColoredMesh {
    let (points, colors) = depth
        .indexed_iter()
        .map(|((r, c), &d)| {
            (camera.backproject(r as f32, c as f32, d), [0, 1, 2].map(|k| sample.image[(r, c, k)] as u8))
        })
        .unzip();
    mesh::ColoredMesh { points, colors, faces: mesh::depth2mesh_faces(depth, &sample.mask) }
}
