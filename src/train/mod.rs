//! Training: data loading and the loss (optimizers and the trainer are next).

pub mod data;
pub mod loss;
