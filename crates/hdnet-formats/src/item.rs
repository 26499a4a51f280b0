//! One item's output files (an image's depth, normals, meshes, ...) written together: each is
//! written into a private staging folder, then all are moved into place, so that an item is
//! either complete or absent, whatever fails or whoever else writes the same folder.

use std::path::{Path, PathBuf};

use crate::FileError;

const STAGING_PREFIX: &str = ".tmp-hdnet-";

/// The staging folder of one item; dropped, it is removed with whatever it still holds.
pub struct ItemWriter {
    out: PathBuf,
    staging: PathBuf,
}

impl ItemWriter {
    /// Stages item `name` for folder `out`.
    pub fn new(out: &Path, name: &str) -> Result<Self, FileError> {
        let staging = out.join(format!("{STAGING_PREFIX}{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir_all(&staging).map_err(|e| FileError::new(out, format!("cannot stage outputs: {e}")))?;
        Ok(Self { out: out.to_path_buf(), staging })
    }

    /// Where the item's files are written before [`ItemWriter::commit`].
    pub fn dir(&self) -> &Path {
        &self.staging
    }

    /// An error about a staged file, told about the file it was meant to become.
    pub fn named_finally(&self, e: FileError) -> FileError {
        match e.path.strip_prefix(&self.staging) {
            Ok(rest) => FileError { path: self.out.join(rest), what: e.what },
            Err(_) => e,
        }
    }

    /// Moves every staged file into `out`, at the same path below it (subfolders made as
    /// needed). Without `overwrite` no existing file is replaced: the files are linked in path
    /// order and the first one claims the item, so of two runs writing one folder exactly one
    /// writes each item, whole; the other gets an error naming the file that exists.
    pub fn commit(self, overwrite: bool) -> Result<Vec<PathBuf>, FileError> {
        let mut staged = Vec::new();
        staged_files(&self.staging, &mut staged).map_err(|e| FileError::new(&self.out, e))?;
        staged.sort();
        let mut placed = Vec::new();
        for file in &staged {
            let target = self.out.join(file.strip_prefix(&self.staging).expect("staged below the staging folder"));
            let moved = target.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| {
                if overwrite { std::fs::rename(file, &target) } else { std::fs::hard_link(file, &target) }
            });
            if let Err(e) = moved {
                // Take back what this item placed: it stays absent rather than half-written.
                placed.iter().for_each(|p| drop(std::fs::remove_file(p)));
                let what = match e.kind() {
                    std::io::ErrorKind::AlreadyExists => "already exists (pass --overwrite to replace it)".to_string(),
                    _ => e.to_string(),
                };
                return Err(FileError::new(&target, what));
            }
            placed.push(target);
        }
        Ok(placed)
    }

    /// Removes staging folders left in `out` by runs that were killed (their process is gone).
    pub fn remove_stale(out: &Path) {
        remove_left_by_dead_processes(out, STAGING_PREFIX);
    }
}

/// The files below `dir`, its subfolders' included.
fn staged_files(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() { staged_files(&path, files)? } else { files.push(path) }
    }
    Ok(())
}

impl Drop for ItemWriter {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

/// Removes the entries of `dir` named `PREFIX...-PID` whose process has ended: what a run killed
/// with -9 left half-made (staging folders, checkpoints being written). A live run's are kept.
pub fn remove_left_by_dead_processes(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(prefix).and_then(|rest| rest.rsplit('-').next()) else { continue };
        if pid.parse::<u32>().is_ok_and(|pid| pid != std::process::id() && !process_alive(pid)) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether process `pid` still runs (Linux: its /proc entry; elsewhere assumed, so nothing of a
/// live run is removed).
pub fn process_alive(pid: u32) -> bool {
    !Path::new("/proc/self").exists() || Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_placed_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        let item = ItemWriter::new(out, "a").unwrap();
        for f in ["a.txt", "a_depth.npy", "a_mesh.obj"] {
            std::fs::write(item.dir().join(f), f).unwrap();
        }
        let placed = item.commit(false).unwrap();
        assert_eq!(placed.len(), 3);
        // A write that fails half way (a full disk) drops its staging: nothing of it appears.
        let failing = ItemWriter::new(out, "b").unwrap();
        std::fs::write(failing.dir().join("b.txt"), "partial").unwrap();
        drop(failing);
        assert!(!out.join("b.txt").exists());
        assert_eq!(std::fs::read_to_string(out.join("a_mesh.obj")).unwrap(), "a_mesh.obj");
        // A second writer of the same item (another run) places nothing and names what exists.
        let again = ItemWriter::new(out, "a").unwrap();
        std::fs::write(again.dir().join("a.txt"), "other").unwrap();
        std::fs::write(again.dir().join("a_zzz.png"), "other").unwrap();
        let err = again.commit(false).unwrap_err().to_string();
        assert!(err.contains("a.txt: already exists"), "{err}");
        assert_eq!(std::fs::read_to_string(out.join("a.txt")).unwrap(), "a.txt");
        assert!(!out.join("a_zzz.png").exists(), "nothing of the losing run is left");
        // With overwrite the item is replaced; nothing staged stays behind.
        let replace = ItemWriter::new(out, "a").unwrap();
        std::fs::write(replace.dir().join("a.txt"), "new").unwrap();
        replace.commit(true).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("a.txt")).unwrap(), "new");
        let left: Vec<_> = std::fs::read_dir(out).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        assert!(left.iter().all(|n| !n.to_string_lossy().starts_with(STAGING_PREFIX)), "{left:?}");
        // An item's files in subfolders (a video frame's pictures) go to the same subfolders.
        let frame = ItemWriter::new(out, "c").unwrap();
        for sub in ["mask", "densepose"] {
            std::fs::create_dir_all(frame.dir().join(sub)).unwrap();
            std::fs::write(frame.dir().join(sub).join("c.png"), sub).unwrap();
        }
        assert_eq!(frame.commit(false).unwrap(), vec![out.join("densepose/c.png"), out.join("mask/c.png")]);
        assert_eq!(std::fs::read_to_string(out.join("mask/c.png")).unwrap(), "mask");
    }

    #[test]
    fn errors_name_the_final_file_and_stale_staging_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let item = ItemWriter::new(dir.path(), "b").unwrap();
        let e = item.named_finally(FileError::new(item.dir().join("b.txt"), "No space left on device"));
        assert_eq!(e.path, dir.path().join("b.txt"));
        drop(item);
        // A run killed with -9 leaves its staging folder; a dead pid's folder is cleaned.
        let stale = dir.path().join(format!("{STAGING_PREFIX}c-{}", u32::MAX - 1));
        std::fs::create_dir_all(&stale).unwrap();
        ItemWriter::remove_stale(dir.path());
        assert!(!stale.exists());
    }
}
