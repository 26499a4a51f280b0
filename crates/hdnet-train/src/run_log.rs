//! A run's log, `train_log.jsonl`: one JSON object per line, written every `log_every` steps
//! (the step's losses) and at every checkpoint with `--heldout` (the held-out scores under
//! "heldout"); each line also holds the step and the time spent. `hdnet plot` reads it back.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use hdnet_formats::FileError;

use crate::Stage;
use crate::trainer::StepReport;

/// The fields that say when a line was written rather than what was measured.
pub const BOOKKEEPING: [&str; 3] = ["step", "seconds", "cpu_seconds"];

type Fields = serde_json::Map<String, serde_json::Value>;

/// The log of a run being trained, open for appending.
pub struct RunLog {
    path: PathBuf,
    file: File,
    stage: Stage,
    /// This process's start ("seconds": wall-clock time since).
    start: Instant,
    /// The run's CPU seconds before this process (its last logged "cpu_seconds" when resumed).
    cpu_before: f64,
}

impl RunLog {
    /// Opens `path` for a run at `step`, dropping the lines of later steps (written after the
    /// checkpoint a run resumes from, so that the resumed run's lines do not repeat them).
    pub fn open(path: &Path, stage: Stage, step: u64) -> Result<Self, FileError> {
        let cpu_before = keep_lines_up_to(path, step)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| FileError::new(path, format!("cannot open: {e}")))?;
        Ok(RunLog { path: path.to_path_buf(), file, stage, start: Instant::now(), cpu_before })
    }

    /// Logs a step's losses.
    pub fn step(&mut self, step: u64, losses: &StepReport) -> Result<(), FileError> {
        let mut fields = self.fields(step);
        for (name, value) in losses.named() {
            fields.insert(name.into(), f64::from(value).into());
        }
        self.write(fields)
    }

    /// Logs the held-out scores at a checkpoint.
    pub fn held_out(&mut self, step: u64, scores: &[(&str, f64)]) -> Result<(), FileError> {
        let mut fields = self.fields(step);
        let scores = scores.iter().map(|&(name, value)| (name.to_string(), value.into()));
        fields.insert("heldout".into(), serde_json::Map::from_iter(scores).into());
        self.write(fields)
    }

    fn write(&mut self, fields: Fields) -> Result<(), FileError> {
        writeln!(self.file, "{}", serde_json::Value::Object(fields))
            .map_err(|e| FileError::new(&self.path, format!("cannot write: {e}")))
    }

    /// The fields every line starts with; "cpu_seconds" is the run's CPU time over all its
    /// processes and threads (what runs sharing a machine are compared by).
    fn fields(&self, step: u64) -> Fields {
        let mut fields = Fields::from_iter([
            ("stage".into(), self.stage.name().into()),
            ("step".into(), step.into()),
            ("seconds".into(), self.start.elapsed().as_secs_f64().into()),
        ]);
        if let Some(cpu) = cpu_seconds() {
            fields.insert("cpu_seconds".into(), (self.cpu_before + cpu).into());
        }
        fields
    }
}

/// Drops the lines of steps after `step` from the log and returns the last "cpu_seconds" of
/// the lines kept (0 for a new run or a log without them).
fn keep_lines_up_to(log: &Path, step: u64) -> Result<f64, FileError> {
    let Ok(text) = std::fs::read_to_string(log) else { return Ok(0.0) };
    let lines: Vec<(&str, Option<serde_json::Value>)> =
        text.lines().map(|line| (line, serde_json::from_str(line).ok())).collect();
    let kept: Vec<&(&str, Option<serde_json::Value>)> = lines
        .iter()
        .filter(|(_, value)| value.as_ref().and_then(|v| v["step"].as_u64()).is_none_or(|s| s <= step))
        .collect();
    if kept.len() < lines.len() {
        let mut rewritten = kept.iter().map(|(line, _)| *line).collect::<Vec<_>>().join("\n");
        if !rewritten.is_empty() {
            rewritten.push('\n');
        }
        hdnet_formats::write_atomic(log, rewritten.as_bytes())?;
    }
    Ok(kept.iter().rev().find_map(|(_, value)| value.as_ref()?["cpu_seconds"].as_f64()).unwrap_or(0.0))
}

/// The CPU time this process has used (user and system), where the system tells.
#[cfg(not(unix))]
fn cpu_seconds() -> Option<f64> {
    None
}

/// The CPU time this process has used (user and system).
#[cfg(unix)]
fn cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given and nothing else.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: the call succeeded, so the struct is initialised.
    let usage = unsafe { usage.assume_init() };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// Named curves of (x, value) points.
pub type Series = BTreeMap<String, Vec<(f64, f64)>>;

/// What a log's curves are drawn against.
#[derive(Clone, Copy)]
pub struct Reading<'a> {
    /// The field of the horizontal axis: "step", "seconds" or "cpu_seconds".
    pub x: &'a str,
    /// Only these keys (all when empty).
    pub keys: &'a [String],
    /// Each curve's name starts with its run's folder (for several logs in one chart).
    pub name_runs: bool,
}

/// The losses (every numeric field but [`BOOKKEEPING`]) and the held-out scores (the fields of
/// "heldout") of `log`, added to `losses` and `held_out` as (x, value) series; lines without
/// the x field are left out.
pub fn read_series(log: &Path, reading: Reading, losses: &mut Series, held_out: &mut Series) -> Result<(), FileError> {
    let text = std::fs::read_to_string(log).map_err(|e| FileError::new(log, format!("cannot read: {e}")))?;
    let run = log.parent().and_then(|d| d.file_name()).map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let name = |key: &str| if reading.name_runs { format!("{run}: {key}") } else { key.to_string() };
    let wanted = |key: &str| reading.keys.is_empty() || reading.keys.iter().any(|k| k == key);
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = |what: &str| FileError::new(log, format!("line {}: {what}", i + 1));
        let value: serde_json::Value = serde_json::from_str(line).map_err(|_| bad("not JSON"))?;
        value["step"].as_f64().ok_or_else(|| bad("no step"))?;
        let Some(x) = value[reading.x].as_f64() else { continue };
        for (key, v) in value.as_object().into_iter().flatten() {
            if let (Some(v), false, true) = (v.as_f64(), BOOKKEEPING.contains(&key.as_str()), wanted(key)) {
                losses.entry(name(key)).or_default().push((x, v));
            }
        }
        for (key, v) in value["heldout"].as_object().into_iter().flatten().filter(|(k, _)| wanted(k)) {
            if let Some(v) = v.as_f64() {
                held_out.entry(name(key)).or_default().push((x, v));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_log_forgets_later_steps_and_counts_cpu_time_from_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train_log.jsonl");
        let lines = [
            r#"{"stage":"normal","step":20,"cpu_seconds":10.0,"total":0.5}"#,
            r#"{"stage":"normal","step":40,"cpu_seconds":21.5,"total":0.4}"#,
            r#"{"stage":"normal","step":60,"cpu_seconds":33.0,"total":0.3}"#,
        ];
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let log = RunLog::open(&path, Stage::Normal, 40).unwrap();
        assert_eq!(log.cpu_before, 21.5);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), lines[..2].join("\n") + "\n");
    }

    #[test]
    fn a_new_log_starts_at_zero_cpu_seconds() {
        let dir = tempfile::tempdir().unwrap();
        let log = RunLog::open(&dir.path().join("train_log.jsonl"), Stage::Normal, 0).unwrap();
        assert_eq!(log.cpu_before, 0.0);
    }
}
