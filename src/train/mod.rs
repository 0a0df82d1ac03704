//! Training: data, augmentation, background loading, the loss, schedules,
//! fresh initialisation, checkpoints and the training loop (the loop, its
//! loader threads and progress bars are native only).

pub mod augment;
pub mod checkpoint;
pub mod data;
pub mod init;
#[cfg(not(target_arch = "wasm32"))]
pub mod loader;
pub mod loss;
#[cfg(not(target_arch = "wasm32"))]
pub mod progress;
pub mod schedule;
#[cfg(not(target_arch = "wasm32"))]
pub mod trainer;
