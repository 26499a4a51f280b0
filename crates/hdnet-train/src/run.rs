//! A training run in its folder: the trainer stepped to its configuration's end, leaving at the
//! configuration's intervals its log (`train_log.jsonl`), progress panels (`progress/`),
//! checkpoints (`checkpoints/`) and, given a held-out folder, the held-out scores in the log.

use std::path::{Path, PathBuf};

use hdnet_formats::FileError;

use crate::Trainer;
use crate::checkpoint;
use crate::progress::write_panel;
use crate::run_log::RunLog;
use crate::trainer::{HeldOut, StepReport};

/// What a run has just done, for a front end to show.
pub enum Event<'a> {
    Stepped(&'a StepReport),
    Saved(&'a Path),
    Scored(&'a [(&'static str, f64)]),
}

/// The folder of a run's checkpoints, which `--resume` continues from.
pub fn checkpoints(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// The run's log.
pub fn log_path(out: &Path) -> PathBuf {
    out.join("train_log.jsonl")
}

/// Steps `trainer` until its configuration's last step, writing the run's files in `out` (a
/// resumed run's log cut back to its checkpoint first), and tells `report` of each step and
/// checkpoint as it comes.
pub fn train(
    trainer: &mut Trainer,
    out: &Path,
    held_out: Option<&HeldOut>,
    mut report: impl FnMut(u64, Event),
) -> Result<(), FileError> {
    std::fs::create_dir_all(out).map_err(|e| FileError::new(out, format!("cannot create: {e}")))?;
    checkpoint::remove_stale(&checkpoints(out));
    let mut log = RunLog::open(&log_path(out), trainer.stage, trainer.step)?;
    let config = trainer.config.clone();
    let due = |every: u64, step: u64| step.is_multiple_of(every) || step == config.steps;
    while trainer.step < config.steps {
        let losses = trainer.step()?;
        let step = trainer.step;
        report(step, Event::Stepped(&losses));
        if due(config.log_every, step) {
            log.step(step, &losses)?;
        }
        if due(config.visualize_every, step) {
            let path = out.join("progress").join(format!("step{step:08}.png"));
            write_panel(&path, trainer.stage, &trainer.preview()?)?;
        }
        if due(config.checkpoint_every, step) {
            report(step, Event::Saved(&trainer.save(&checkpoints(out))?));
            if let Some(held_out) = held_out {
                let scores = trainer.validate(held_out)?;
                log.held_out(step, &scores)?;
                report(step, Event::Scored(&scores));
            }
        }
    }
    Ok(())
}
