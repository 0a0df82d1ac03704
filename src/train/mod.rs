//! Training: data, augmentation, background loading, the loss, schedules,
//! fresh initialisation, checkpoints and the training loop.

pub mod augment;
pub mod checkpoint;
pub mod data;
pub mod init;
pub mod loader;
pub mod loss;
pub mod progress;
pub mod schedule;
pub mod trainer;
