//! Correspondences between two frames in the original text formats:
//! `I_J_i_r1_c1_r2_c2.txt` (rows `part,r1,c1,r2,c2`, 1-based pixels, grouped by part) and
//! `I_J_i_limit.txt` (24 rows `part,first,last`: 0-based inclusive row range of each part,
//! `-1,-1` when absent).

use std::path::Path;

use crate::FileError;
use crate::densepose::NUM_PARTS;

/// Matched pixels of frames i and j, grouped by part in part order (0-based rows/cols).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Correspondences {
    /// Part 1..24 of each row.
    pub part: Vec<u8>,
    /// (row, col) in frame i.
    pub pixel_i: Vec<[u32; 2]>,
    /// (row, col) in frame j.
    pub pixel_j: Vec<[u32; 2]>,
}

impl Correspondences {
    pub fn len(&self) -> usize {
        self.part.len()
    }

    pub fn is_empty(&self) -> bool {
        self.part.is_empty()
    }

    /// Reads the original pair of files. As the original reader, a row's part is given by the
    /// limit file's ranges (the part column is not trusted); rows outside every range are unused.
    pub fn read_original(corrs: &Path, limits: &Path) -> Result<Self, FileError> {
        let rows = read_int_rows(corrs, 5)?;
        let limit_rows = read_int_rows(limits, 3)?;
        if limit_rows.len() != usize::from(NUM_PARTS) {
            return Err(FileError::new(limits, format!("{} rows, expected {NUM_PARTS}", limit_rows.len())));
        }
        let mut out = Self::default();
        let mut next_free = 0;
        for (p, limit) in limit_rows.iter().enumerate() {
            let (first, last) = (limit[1], limit[2]);
            if limit[0] != p as i64 + 1 {
                return Err(FileError::new(limits, format!("line {}: part {}, expected {}", p + 1, limit[0], p + 1)));
            }
            if first == -1 && last == -1 {
                continue;
            }
            if first < next_free || last < first || last as usize >= rows.len() {
                return Err(FileError::new(
                    limits,
                    format!(
                        "line {}: range {first}..{last} overlaps an earlier part's or lies outside the {} correspondence rows",
                        p + 1,
                        rows.len()
                    ),
                ));
            }
            next_free = last + 1;
            for (k, row) in rows.iter().enumerate().take(last as usize + 1).skip(first as usize) {
                let pixel = |r: i64, c: i64| -> Result<[u32; 2], FileError> {
                    if r < 1 || c < 1 || r > u32::MAX as i64 || c > u32::MAX as i64 {
                        return Err(FileError::new(corrs, format!("line {}: pixel ({r},{c}) is not 1-based", k + 1)));
                    }
                    Ok([(r - 1) as u32, (c - 1) as u32])
                };
                out.part.push(p as u8 + 1);
                out.pixel_i.push(pixel(row[1], row[2])?);
                out.pixel_j.push(pixel(row[3], row[4])?);
            }
        }
        Ok(out)
    }

    /// The first match that lies outside frames of `height` x `width`, as an error.
    pub fn check_within(&self, height: usize, width: usize) -> Result<(), String> {
        let outside = |p: &[u32; 2]| p[0] as usize >= height || p[1] as usize >= width;
        match (0..self.len()).find(|&k| outside(&self.pixel_i[k]) || outside(&self.pixel_j[k])) {
            Some(k) => Err(format!(
                "match {k}: pixel ({}, {}) -> ({}, {}) (0-based) lies outside the {width}x{height} frames",
                self.pixel_i[k][0], self.pixel_i[k][1], self.pixel_j[k][0], self.pixel_j[k][1]
            )),
            None => Ok(()),
        }
    }

    /// Index range of each part's rows (empty for absent parts).
    pub fn part_ranges(&self) -> Vec<std::ops::Range<usize>> {
        (1..=NUM_PARTS)
            .map(|p| {
                let start = self.part.partition_point(|&q| q < p);
                let end = self.part.partition_point(|&q| q <= p);
                start..end
            })
            .collect()
    }
}

/// Integer rows of a comma-separated file with `width` columns (`3.0` reads as 3, as NumPy's
/// `genfromtxt(...).astype(int)` does; a fractional `3.7` is an error, not a pixel).
fn read_int_rows(path: &Path, width: usize) -> Result<Vec<Vec<i64>>, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError::new(path, e))?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let row = line
            .split(',')
            .map(|t| {
                t.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15)
                    .map(|v| v as i64)
                    .ok_or_else(|| FileError::new(path, format!("line {}: '{}' is not an integer", i + 1, t.trim())))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if row.len() != width {
            return Err(FileError::new(path, format!("line {}: {} values, expected {width}", i + 1, row.len())));
        }
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_assign_parts_and_shift_to_zero_based() {
        let dir = tempfile::tempdir().unwrap();
        let (c, l) = (dir.path().join("c.txt"), dir.path().join("l.txt"));
        std::fs::write(&c, "2,1,1,3,4\n2,5,6,7,8\n9,10,11,12,13\n").unwrap();
        let mut limits: Vec<String> = (1..=NUM_PARTS).map(|p| format!("{p},-1,-1")).collect();
        limits[1] = "2,0,1".into();
        limits[8] = "9,2,2".into();
        std::fs::write(&l, limits.join("\n")).unwrap();
        let corr = Correspondences::read_original(&c, &l).unwrap();
        assert_eq!(corr.part, vec![2, 2, 9]);
        assert_eq!(corr.pixel_i[0], [0, 0]);
        assert_eq!(corr.pixel_j[2], [11, 12]);
        let ranges = corr.part_ranges();
        assert_eq!((ranges[1].clone(), ranges[8].clone(), ranges[0].clone()), (0..2, 2..3, 0..0));

        limits[8] = "9,2,5".into();
        std::fs::write(&l, limits.join("\n")).unwrap();
        let err = Correspondences::read_original(&c, &l).unwrap_err().to_string();
        assert!(err.contains("l.txt") && err.contains("line 9"), "{err}");
        std::fs::write(&c, "2,1,1,3\n").unwrap();
        let err = Correspondences::read_original(&c, &l).unwrap_err().to_string();
        assert!(err.contains("c.txt: line 1: 4 values, expected 5"), "{err}");
    }

    #[test]
    fn fractional_pixels_overlapping_ranges_and_pixels_beyond_the_frame_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (c, l) = (dir.path().join("c.txt"), dir.path().join("l.txt"));
        let mut limits: Vec<String> = (1..=NUM_PARTS).map(|p| format!("{p},-1,-1")).collect();
        limits[1] = "2,0,1".into();
        std::fs::write(&l, limits.join("\n")).unwrap();
        std::fs::write(&c, "2,1.0,1,3,4\n2,5,6.5,7,8\n").unwrap();
        let err = Correspondences::read_original(&c, &l).unwrap_err().to_string();
        assert!(err.contains("c.txt: line 2: '6.5' is not an integer"), "{err}");
        std::fs::write(&c, "2,1,1,3,4\n2,5,6,7,8\n").unwrap();
        limits[2] = "3,1,1".into();
        std::fs::write(&l, limits.join("\n")).unwrap();
        let err = Correspondences::read_original(&c, &l).unwrap_err().to_string();
        assert!(err.contains("l.txt: line 3: range 1..1 overlaps"), "{err}");
        limits[2] = "7,-1,-1".into();
        std::fs::write(&l, limits.join("\n")).unwrap();
        let err = Correspondences::read_original(&c, &l).unwrap_err().to_string();
        assert!(err.contains("l.txt: line 3: part 7, expected 3"), "{err}");
        limits[2] = "3,-1,-1".into();
        std::fs::write(&l, limits.join("\n")).unwrap();
        let corr = Correspondences::read_original(&c, &l).unwrap();
        assert_eq!(corr.check_within(8, 8), Ok(()));
        let err = corr.check_within(8, 7).unwrap_err();
        assert!(err.contains("match 1") && err.contains("outside the 7x8 frames"), "{err}");
    }
}
