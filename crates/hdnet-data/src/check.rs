//! `hdnet data check`: reads every file of a dataset folder the way training will, and lists
//! every problem (file and reason) instead of stopping at the first.

use std::path::Path;

use crate::layout::{
    dirs, frame_names, frames_without_color, missing_color, read_corr_mat, read_correspondences, read_labelled,
    read_video_frame,
};

/// What a folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Labelled renders with ground-truth `depth/` and `normal/`.
    Labelled,
    /// Unlabelled video frames with `pred_normals/` and `correspondences/`.
    Video,
}

/// The outcome: items checked and one line per problem.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub frames: usize,
    pub pairs: usize,
    pub problems: Vec<String>,
}

/// Guesses the kind from the folders present.
pub fn detect(root: &Path) -> Option<Kind> {
    if root.join(dirs::DEPTH).is_dir() || root.join(dirs::NORMAL).is_dir() {
        Some(Kind::Labelled)
    } else if root.join(dirs::PRED_NORMALS).is_dir() || root.join(dirs::CORRESPONDENCES).is_dir() {
        Some(Kind::Video)
    } else {
        None
    }
}

pub fn check(root: &Path, kind: Kind) -> CheckReport {
    let mut report = CheckReport::default();
    let names = match frame_names(root) {
        Ok(n) => n,
        Err(e) => {
            report.problems.push(e.to_string());
            return report;
        }
    };
    if names.is_empty() {
        report.problems.push(format!("{}: no frames (color_WO_bg/*.png)", root.display()));
    }
    report.frames = names.len();
    report.problems.extend(frames_without_color(root).iter().map(|f| missing_color(f).to_string()));
    let mut sizes = std::collections::HashMap::new();
    for name in &names {
        let result = match kind {
            Kind::Labelled => read_labelled(root, name).map(|f| f.person.size()),
            Kind::Video => read_video_frame(root, name).map(|f| f.person.size()),
        };
        match result {
            Ok(size) => drop(sizes.insert(name.clone(), size)),
            Err(e) => report.problems.push(e.to_string()),
        }
    }
    if kind == Kind::Video {
        match read_corr_mat(root) {
            Err(e) => report.problems.push(e.to_string()),
            Ok(rows) => {
                for (frame, partners) in rows {
                    if !names.contains(&frame) {
                        report
                            .problems
                            .push(format!("correspondences/corr_mat.txt: frame {frame} has no color_WO_bg image"));
                    }
                    let mut partners = partners;
                    partners.sort();
                    partners.dedup();
                    for partner in partners {
                        report.pairs += 1;
                        // A frame that did not read is reported above; its size is unknown.
                        let Some(&size) = sizes.get(&frame) else { continue };
                        if let Err(e) = read_correspondences(root, &frame, &partner, size) {
                            report.problems.push(e.to_string());
                        }
                    }
                }
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::tests::write_images;
    use crate::layout::{Form, write_corr_mat, write_depth, write_normals};
    use ndarray::{Array2, Array3};

    #[test]
    fn lists_every_problem_and_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let normals = Array3::from_elem((4, 5, 3), 0.5);
        for name in ["0000000", "0000001", "0000002"] {
            write_images(root, name);
            write_normals(&root.join("normal"), name, &normals, Form::Binary).unwrap();
        }
        write_depth(&root.join("depth"), "0000000", &Array2::from_elem((4, 5), 3.0), Form::Original).unwrap();
        // 0000001: no depth at all; 0000002: a bad number
        std::fs::write(root.join("depth/0000002.txt"), "1,2,3,4,5\n1,2,3,4,5\n1,2,NaNx,4,5\n1,2,3,4,5\n").unwrap();
        assert_eq!(detect(root), Some(Kind::Labelled));
        let report = check(root, Kind::Labelled);
        assert_eq!(report.frames, 3);
        assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
        assert!(report.problems[0].contains("depth/0000001.txt"));
        assert!(report.problems[1].contains("0000002.txt: line 3: 'NaNx' is not a number"));
    }

    #[test]
    fn video_problems_include_missing_correspondences() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_images(root, "0000000");
        write_images(root, "0000001");
        write_normals(&root.join("pred_normals"), "0000000", &Array3::zeros((4, 5, 3)), Form::Original).unwrap();
        write_corr_mat(root, &[("0000000".into(), vec!["0000001".into()]), ("0000009".into(), vec!["0000000".into()])])
            .unwrap();
        let report = check(root, Kind::Video);
        let all = report.problems.join("\n");
        assert!(all.contains("pred_normals/0000001_1.txt"), "{all}");
        assert!(all.contains("frame 0000009 has no color_WO_bg image"), "{all}");
        assert!(all.contains("0000000_0000001_i_r1_c1_r2_c2.txt"), "{all}");
        assert_eq!(report.pairs, 2);
    }

    #[test]
    fn a_frame_without_its_color_image_is_reported_not_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_images(root, "0000000");
        write_images(root, "0000001");
        std::fs::remove_file(root.join("color_WO_bg/0000001.png")).unwrap();
        write_normals(&root.join("pred_normals"), "0000000", &Array3::zeros((4, 5, 3)), Form::Original).unwrap();
        let report = check(root, Kind::Video);
        let all = report.problems.join("\n");
        assert!(all.contains("mask/0000001.png: its frame has no color_WO_bg/ image"), "{all}");
        assert!(all.contains("densepose/0000001.png: its frame has no color_WO_bg/ image"), "{all}");
    }
}
