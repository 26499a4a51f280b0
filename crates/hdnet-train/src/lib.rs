//! HDNet's training in Burn: the three stages of the paper ([`trainer`]), their configuration
//! ([`config`]), the original's Adam ([`adam`]) and exact, crash-safe checkpoints ([`checkpoint`]).

pub mod adam;
pub mod batch;
pub mod checkpoint;
pub mod config;
pub mod stage_loss;
pub mod trainer;

pub use config::{Stage, TrainConfig};
pub use trainer::Trainer;
