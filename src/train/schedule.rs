//! Learning-rate schedules as timm's schedulers compute them
//! (`CosineLRScheduler`, `StepLRScheduler`, constant), with linear warmup from
//! `warmup_lr` (timm's `warmup_prefix=False`: the decay counts warmup epochs).
//! By default the rate changes once per epoch, as timm's train.py does;
//! `on_updates` changes it every optimizer step (timm's `--sched-on-updates`).

use crate::error::{Error, Result};

/// Which decay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchedKind {
    /// `cosine`: half a cosine from `lr` down to `min_lr` at `epochs`.
    Cosine,
    /// `step`: `lr` times `decay_rate` every `decay_epochs`.
    Step,
    /// `constant` (or `none`): `lr` after warmup.
    Constant,
}

impl SchedKind {
    /// Parses timm's `--sched` value: `cosine`, `step`, `constant` or `none`.
    /// Anything else is an [`Error::Config`].
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "cosine" => Ok(SchedKind::Cosine),
            "step" => Ok(SchedKind::Step),
            "constant" | "none" => Ok(SchedKind::Constant),
            _ => Err(Error::Config(format!("--sched {s:?} is not supported (cosine, step, constant)"))),
        }
    }
}

/// A schedule over a whole run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    /// The decay (`--sched`).
    pub kind: SchedKind,
    /// Base learning rate after warmup (`--lr`).
    pub lr: f64,
    /// Floor the cosine decays to (`--min-lr`).
    pub min_lr: f64,
    /// Rate at the start of warmup (`--warmup-lr`).
    pub warmup_lr: f64,
    /// Length of the linear warmup in epochs (`--warmup-epochs`; may be fractional).
    pub warmup_epochs: f64,
    /// Length of the run in epochs (`--epochs`): the cosine's period.
    pub epochs: usize,
    /// Step schedule: multiply by `decay_rate` every `decay_epochs`.
    pub decay_epochs: f64,
    /// Step schedule's factor (`--decay-rate`).
    pub decay_rate: f64,
    /// Change the rate every optimizer step instead of every epoch (`--sched-on-updates`).
    pub on_updates: bool,
}

impl Schedule {
    /// The rate for optimizer step `step` (0-based) of `epoch` (0-based),
    /// with `steps_per_epoch` updates per epoch.
    pub fn lr_at(&self, epoch: usize, step: usize, steps_per_epoch: usize) -> f64 {
        let t = if self.on_updates { epoch as f64 + step as f64 / steps_per_epoch.max(1) as f64 } else { epoch as f64 };
        if t < self.warmup_epochs {
            return self.warmup_lr + t * (self.lr - self.warmup_lr) / self.warmup_epochs;
        }
        match self.kind {
            SchedKind::Constant => self.lr,
            SchedKind::Step => self.lr * self.decay_rate.powf((t / self.decay_epochs.max(f64::MIN_POSITIVE)).floor()),
            SchedKind::Cosine => {
                let total = self.epochs.max(1) as f64;
                if t >= total {
                    self.min_lr
                } else {
                    self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + (std::f64::consts::PI * t / total).cos())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    fn sched(kind: SchedKind) -> Schedule {
        Schedule {
            kind,
            lr: 1e-3,
            min_lr: 1e-5,
            warmup_lr: 1e-6,
            warmup_epochs: 2.0,
            epochs: 10,
            decay_epochs: 3.0,
            decay_rate: 0.1,
            on_updates: false,
        }
    }
    #[test]
    fn timm_values() {
        // Values from timm.scheduler.CosineLRScheduler(t_initial=10, lr_min=1e-5,
        // warmup_t=2, warmup_lr_init=1e-6), stepped per epoch.
        let s = sched(SchedKind::Cosine);
        let want = [
            1e-6,
            0.0005005000000000001,
            0.000905463412215599,
            0.0007959536998847742,
            0.000657963412215599,
            0.000505,
            3.4227024433899005e-05,
        ];
        let epochs = [0, 1, 2, 3, 4, 5, 9];
        for (&e, w) in epochs.iter().zip(&want) {
            assert!((s.lr_at(e, 0, 100) - w).abs() < 1e-12, "epoch {e}: {} vs {w}", s.lr_at(e, 0, 100));
        }
        assert_eq!(s.lr_at(10, 0, 100), 1e-5);
        let st = sched(SchedKind::Step);
        assert!((st.lr_at(3, 0, 1) - 1e-4).abs() < 1e-15 && (st.lr_at(6, 0, 1) - 1e-5).abs() < 1e-15);
        let mut u = sched(SchedKind::Constant);
        u.on_updates = true;
        assert!((u.lr_at(1, 50, 100) - (1e-6 + 1.5 * (1e-3 - 1e-6) / 2.0)).abs() < 1e-15);
        assert_eq!(u.lr_at(2, 0, 100), 1e-3);
    }
}
