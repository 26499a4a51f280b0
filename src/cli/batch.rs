//! How the batch commands report: a progress bar over their items, notes and failures printed
//! above it (a failed item is named and counted, the others go on), and an exit status that is a
//! failure when any item failed.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use hdnet_formats::item::ItemWriter;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar over `len` steps or items.
pub fn progress(len: usize) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} [{elapsed} < {eta}]").expect("valid template"),
    );
    bar
}

/// A batch job in progress.
pub struct Batch {
    bar: ProgressBar,
    failed: usize,
}

impl Batch {
    pub fn new(items: usize) -> Self {
        Self { bar: progress(items), failed: 0 }
    }

    /// Shows the item being worked on.
    pub fn working_on(&self, name: &str) {
        self.bar.set_message(name.to_string());
    }

    /// Prints a note above the bar (standard error).
    pub fn say(&self, line: impl Display) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// Prints a result line above the bar (standard output).
    pub fn row(&self, line: impl Display) {
        self.bar.suspend(|| println!("{line}"));
    }

    /// Prints why an item failed (`line` names it) and counts it.
    pub fn fail(&mut self, line: impl Display) {
        self.say(line);
        self.failed += 1;
    }

    /// `items` more items are finished, failed or not.
    pub fn advance(&self, items: usize) {
        self.bar.inc(items as u64);
    }

    pub fn failed(&self) -> usize {
        self.failed
    }

    /// Clears the bar; the job's exit status.
    pub fn finish(self) -> ExitCode {
        self.bar.finish_and_clear();
        if self.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
    }
}

/// A batch's output folder, made when missing; one this run made and left empty (every item
/// failed) is removed again rather than left behind.
pub struct OutFolder {
    path: PathBuf,
    made: bool,
}

impl OutFolder {
    pub fn make(path: PathBuf) -> anyhow::Result<Self> {
        let made = !path.exists();
        std::fs::create_dir_all(&path)
            .with_context(|| format!("{}: cannot create the output folder", path.display()))?;
        ItemWriter::remove_stale(&path);
        Ok(Self { path, made })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for OutFolder {
    fn drop(&mut self) {
        if self.made {
            // remove_dir leaves a folder that holds anything.
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}
