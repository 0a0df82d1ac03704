//! The only module that imports wgpu: device, shaders and buffers.

pub mod buffers;
pub mod context;
pub mod kernels;

pub use context::{AdapterSummary, Context};
pub use kernels::{Const, KernelKey};
pub mod exec;
pub mod optim;
pub mod program;
pub use exec::{by_op_kind, Executable, LayerTime};
pub use kernels::PipelineCache;
pub use program::{BatchBuckets, Feed, Program};
