//! Every file `hdnet infer` writes for an image, written as one item (all or none).

use std::borrow::Cow;
use std::path::Path;

use hdnet_data::layout::write_camera_json;
use hdnet_formats::glb::{self, Texture};
use hdnet_formats::images::PersonImage;
use hdnet_formats::item::ItemWriter;
use hdnet_formats::mesh::{self, ColoredMesh};
use hdnet_formats::{FileError, npy, text, visual};
use hdnet_geometry::{Camera, Integration};
use hdnet_model::Prediction;
use hdnet_model::pipeline::unit_normals;
use ndarray::{Array2, Array3, Axis};

use crate::photo::{Input, MaskFrom, PhotoFrame};

/// Every file written for sample NAME.
pub fn output_names(name: &str, photo: bool, segmented: bool, turntable: bool) -> Vec<String> {
    let mut names = vec![format!("{name}.txt")];
    names.extend((1..=3).map(|k| format!("{name}_normal_{k}.txt")));
    names.extend(
        ["_mesh.obj", "_results.png", "_depth.npy", "_normal.npy", ".ply", ".glb"].map(|s| format!("{name}{s}")),
    );
    if photo {
        names.extend(
            ["_depth_full.npy", "_normal_full.npy", "_normal_full.png", "_camera.json"].map(|s| format!("{name}{s}")),
        );
    }
    if segmented {
        names.extend(["_mask.png", "_keypoints.json"].map(|s| format!("{name}{s}")));
    }
    if turntable {
        names.push(format!("{name}_turntable.gif"));
    }
    names
}

/// Writes an image's outputs as one item: all of them, or none if anything fails (a full disk,
/// another run that wrote the same image first).
pub fn write_item(
    out: &Path,
    l: &Input,
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
    l: &Input,
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
    let mesh = colored_mesh(&l.sample, &depth, &p.normals, &camera);
    let texture =
        l.photo.as_ref().map(|photo| Texture { image: Cow::Borrowed(&photo.texture), uv: grid_uv(depth.dim()) });
    let warnings = write_outputs(out, &l.sample, p, &depth, &mesh, texture.as_ref())?;
    if let Some(photo) = &l.photo {
        write_photo_outputs(out, &l.sample, photo, &refined, &p.normals, &camera)?;
        if let MaskFrom::Found(person) = &photo.mask_from {
            person.write(out, &l.sample.name)?;
        }
    }
    if turntable {
        if mesh.faces.is_empty() {
            return Ok([warnings, vec!["no smooth surface to turn: _turntable.gif not written".to_string()]].concat());
        }
        write_turntable(&out.join(format!("{}_turntable.gif", l.sample.name)), &mesh, 36, 256)?;
    }
    Ok(warnings)
}

/// The results at the photo's resolution: depth and normals pasted back from the person's pixels
/// of the crop (`sample`, the networks' input; zero off the photo's mask), and the camera that
/// sees the depth as the mesh has it (`camera`, the crop's) in the photo.
fn write_photo_outputs(
    out: &Path,
    sample: &PersonImage,
    photo: &PhotoFrame,
    depth: &Array2<f32>,
    normals: &Array3<f32>,
    camera: &Camera,
) -> Result<(), FileError> {
    let (name, crop_mask) = (&sample.name, &sample.mask);
    let corner = [photo.crop.left as f32, photo.crop.top as f32];
    let in_photo = camera.in_photo(corner, photo.crop.side as f32, depth.dim().1);
    write_camera_json(&out.join(format!("{name}_camera.json")), &in_photo)?;
    let depth = photo.crop.paste_back_map(depth, crop_mask, &photo.mask);
    let normals = unit_normals(&photo.crop.paste_back(normals, crop_mask, &photo.mask), &photo.mask);
    npy::write(out.join(format!("{name}_depth_full.npy")), &depth)?;
    npy::write(out.join(format!("{name}_normal_full.npy")), &normals)?;
    let colours = visual::white_off_mask(visual::normal_colors(&normals, &photo.mask), &photo.mask);
    visual::save_png(out.join(format!("{name}_normal_full.png")), &visual::side_by_side(&[colours]))
}

/// Writes every output of one image (`depth` is the prediction times the mask; `texture`, a
/// photo's, for the GLB); returns warnings for outputs that could not be made.
fn write_outputs(
    out: &Path,
    sample: &PersonImage,
    p: &Prediction,
    depth: &Array2<f32>,
    mesh: &ColoredMesh,
    texture: Option<&Texture>,
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
    glb::write_glb(out.join(format!("{name}.glb")), mesh, texture)?;
    let mut warnings = Vec::new();
    match visual::results_panel(&sample.image, depth, &p.normals, mask) {
        Some(panel) => visual::save_png(out.join(format!("{name}_results.png")), &panel)?,
        None => warnings.push("no positive depth on the mask: _results.png not written".to_string()),
    }
    Ok(warnings)
}

/// The depth2mesh faces over camera-space points (metres, through `camera`), coloured by the
/// input, with the predicted `normals`, wound to face the camera (the original's face away from
/// it), as viewers light the side that faces its normal.
fn colored_mesh(sample: &PersonImage, depth: &Array2<f32>, normals: &Array3<f32>, camera: &Camera) -> ColoredMesh {
    let (points, colors) = depth
        .indexed_iter()
        .map(|((r, c), &d)| {
            (camera.backproject(r as f32, c as f32, d), [0, 1, 2].map(|k| sample.image[(r, c, k)] as u8))
        })
        .unzip();
    let normals = Some(normals.rows().into_iter().map(|n| [n[0], n[1], n[2]]).collect());
    let faces = mesh::depth2mesh_faces(depth, &sample.mask).into_iter().map(|[a, b, c]| [a, c, b]).collect();
    ColoredMesh { points, colors, normals, faces }
}

/// Where each pixel's centre of an `h` x `w` grid (the mesh's vertices, row-major) lies on an
/// image of the same square: the photo's crop, as the networks saw it, at any resolution.
fn grid_uv((h, w): (usize, usize)) -> Vec<[f32; 2]> {
    (0..h).flat_map(|r| (0..w).map(move |c| [(c as f32 + 0.5) / w as f32, (r as f32 + 0.5) / h as f32])).collect()
}

/// Renders the turntable to `out`: a GIF when it ends in .gif, else numbered PNGs in that folder.
pub fn write_turntable(out: &Path, mesh: &ColoredMesh, frames: usize, size: usize) -> Result<(), FileError> {
    let views = hdnet_render::turntable(&mesh.points, &mesh.colors, &mesh.faces, frames, size);
    if out.extension().is_some_and(|e| e.eq_ignore_ascii_case("gif")) {
        // 36 views at 80 ms: one turn in about 3 s.
        return visual::save_gif(out, &views, 80);
    }
    std::fs::create_dir_all(out).map_err(|e| FileError::new(out, e))?;
    for (i, view) in views.iter().enumerate() {
        visual::save_png(out.join(format!("{i:03}.png")), &visual::side_by_side(std::slice::from_ref(view)))?;
    }
    Ok(())
}
