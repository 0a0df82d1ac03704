//! Training: data loading (more to come: loss, optimizers, trainer).

pub mod data;
