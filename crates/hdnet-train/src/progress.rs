//! The run's progress panels (`progress/stepNNNNNNNN.png`), like the original's
//! training_progress images.

use std::path::Path;

use hdnet_formats::FileError;
use hdnet_formats::visual::{depth_heat_map, normal_colors, save_png, side_by_side, to_u8, white_off_mask};
use hdnet_model::pipeline::unit_normals;
use ndarray::{Array3, Axis};

use crate::Stage;
use crate::trainer::Preview;

/// input | prediction(s) | ground truth: the normal stage input | predicted normals | GT normals;
/// the depth stages input | predicted depth | normals of the predicted depth | GT depth | GT
/// normals.
pub fn write_panel(path: &Path, stage: Stage, preview: &Preview) -> Result<(), FileError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| FileError::new(dir, format!("cannot create: {e}")))?;
    }
    let f = &preview.frame;
    let (h, w) = f.person.size();
    let blank = || Array3::from_elem((h, w, 3), 255u8);
    let normals = |n: &Array3<f32>| {
        white_off_mask(normal_colors(&unit_normals(n, &f.person.mask), &f.person.mask), &f.person.mask)
    };
    let panels = match stage {
        Stage::Normal => vec![to_u8(&f.person.image), normals(&preview.prediction), normals(&f.normals)],
        Stage::Depth | Stage::Hdnet => {
            let depth = preview.prediction.index_axis(Axis(2), 0).to_owned();
            vec![
                to_u8(&f.person.image),
                depth_heat_map(&depth, &f.person.mask).unwrap_or_else(blank),
                preview.normals_from_depth.as_ref().map_or_else(blank, normals),
                depth_heat_map(&f.depth, &f.person.mask).unwrap_or_else(blank),
                normals(&f.normals),
            ]
        }
    };
    save_png(path, &side_by_side(&panels))
}
