//! `out = (a + b) * alpha`, elementwise over equal shapes (DeiT: the mean of
//! the class head and the distillation head, alpha = 0.5).

use super::u32_of;
use crate::error::{Error, Result};
use crate::gpu::{Const, KernelKey};
use crate::graph::{DeviceCaps, Dispatch, Graph, Op, TensorId};

/// See the module docs.
#[derive(Debug, Clone)]
pub struct AddScale {
    pub a: TensorId,
    pub b: TensorId,
    pub alpha: f32,
    pub len: usize,
}

impl Graph {
    /// `(a + b) * alpha`.
    pub fn add_scale(&mut self, a: TensorId, b: TensorId, alpha: f32) -> Result<TensorId> {
        let s = self.shape(a).to_vec();
        if self.shape(b) != s.as_slice() {
            return Err(Error::shape("add_scale", format!("{s:?} vs {:?}", self.shape(b))));
        }
        let len = self.numel(a);
        Ok(self.push(Box::new(AddScale { a, b, alpha, len }), &s))
    }
}

impl Op for AddScale {
    fn name(&self) -> &'static str {
        "add_scale"
    }

    fn bindings(&self) -> Vec<Option<TensorId>> {
        vec![Some(self.a), Some(self.b)]
    }

    fn dispatch(&self, _g: &Graph, _caps: &DeviceCaps) -> Result<Dispatch> {
        let key = KernelKey::new("elementwise", "main")
            .u("LEN", u32_of("add_scale", "len", self.len)?)
            .with("ALPHA", Const::f32(self.alpha));
        Dispatch::linear(key, self.len)
    }

    fn cpu(&self, _g: &Graph, get: &dyn Fn(TensorId) -> Vec<f32>) -> Vec<f32> {
        let (a, b) = (get(self.a), get(self.b));
        a.iter().zip(&b).map(|(x, y)| (x + y) * self.alpha).collect()
    }
}
