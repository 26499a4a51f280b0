//! HDNet's training in Burn: the three stages of the paper ([`trainer`]), their configuration
//! ([`config`]), the original's Adam ([`adam`]) and exact, crash-safe checkpoints ([`checkpoint`]);
//! a run in its folder ([`run`]) and what it leaves besides them: its log ([`run_log`]), progress
//! panels ([`progress`]) and curves ([`curves`]).

pub mod adam;
pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod curves;
pub mod progress;
pub mod run;
pub mod run_log;
pub mod stage_loss;
pub mod trainer;

pub use config::{Stage, TrainConfig};
pub use trainer::Trainer;
