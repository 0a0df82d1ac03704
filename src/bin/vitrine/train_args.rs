//! The flags of `vitrine train` and `vitrine eval`, named as in timm's
//! train.py and declared for clap; `train.rs` does what they say.

use crate::cli::{natural, number, pixels, positive, steps};
use clap::builder::{PossibleValue, PossibleValuesParser};
use clap::{ArgAction, Args};

/// Allowed words for a flag; `(name, alias)` pairs with the alias hidden from help.
fn choices(values: &[(&'static str, Option<&'static str>)]) -> PossibleValuesParser {
    PossibleValuesParser::new(values.iter().map(|&(name, alias)| {
        let v = PossibleValue::new(name);
        match alias {
            Some(a) => v.alias(a),
            None => v,
        }
    }))
}

fn opt_names() -> PossibleValuesParser {
    choices(&[("adamw", None), ("sgd", Some("nesterov")), ("momentum", None)])
}
fn sched_names() -> PossibleValuesParser {
    choices(&[("cosine", None), ("step", None), ("constant", Some("none"))])
}
fn crop_names() -> PossibleValuesParser {
    choices(&[("rrc", None), ("pad", None), ("center", Some("none"))])
}
fn interpolations() -> PossibleValuesParser {
    choices(&[("bicubic", None), ("bilinear", None), ("nearest", None)])
}
fn splits() -> PossibleValuesParser {
    choices(&[("val", Some("validation")), ("test", None), ("train", None)])
}

/// `vitrine train`'s flags. `None` (or `false`) means not given: a new run
/// takes the default written in the help, `--resume` keeps the run's value.
/// A flag given twice keeps its last value (multi-valued ones too, as timm's).
#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Image folder: ImageFolder, IDX (MNIST) or CIFAR batches [required without --resume]
    #[arg(long, value_name = "D", help_heading = "Data and output", value_hint = clap::ValueHint::DirPath)]
    pub data: Option<String>,
    /// Output folder: model and training state [required without --resume]
    #[arg(long, visible_alias = "output", value_name = "DIR", help_heading = "Data and output", value_hint = clap::ValueHint::DirPath)]
    pub out: Option<String>,
    /// Continue the run checkpointed in DIR; the flags given change its options
    #[arg(long, value_name = "DIR", help_heading = "Data and output", value_hint = clap::ValueHint::DirPath)]
    pub resume: Option<String>,
    /// Classes of the new head [default: the data's]
    #[arg(long, value_name = "K", value_parser = positive, help_heading = "Data and output")]
    pub num_classes: Option<usize>,
    /// Share of the training set held out when the data has no val/test split [default: 0.1]
    #[arg(long, value_name = "F", value_parser = number, help_heading = "Data and output")]
    pub val_split: Option<f64>,
    /// Images per micro-batch (a step is --grad-accum-steps of them) [default: 64]
    #[arg(short = 'b', long, value_name = "B", value_parser = positive, help_heading = "Data and output")]
    pub batch_size: Option<usize>,
    /// Image decoding threads [default: 2]
    #[arg(short = 'j', long, value_name = "N", value_parser = positive, help_heading = "Data and output")]
    pub workers: Option<usize>,

    /// A checkpoint to fine-tune: a hub folder or a .safetensors file
    #[arg(long, value_name = "M", help_heading = "Model", value_hint = clap::ValueHint::AnyPath)]
    pub model: Option<String>,
    /// A timm preset (vitrine presets) to train from scratch, or a bare --model's
    #[arg(long, value_name = "PRESET", help_heading = "Model")]
    pub arch: Option<String>,
    /// timm model kwargs for --arch (values as JSON or Python: True, None, (2,2))
    #[arg(long, value_name = "K=V", num_args = 1.., action = ArgAction::Set, help_heading = "Model")]
    pub model_kwargs: Option<Vec<String>>,
    /// Input size for --arch [default: the preset's]
    #[arg(long, value_name = "N", value_parser = positive, help_heading = "Model")]
    pub img_size: Option<usize>,
    /// Input channels for --arch [default: the preset's]
    #[arg(long, value_name = "N", value_parser = positive, help_heading = "Model")]
    pub in_chans: Option<usize>,
    /// Normalisation mean, 1 or 3 numbers [default: the model's]
    #[arg(long, value_name = "MEAN", num_args = 1..=3, action = ArgAction::Set, value_parser = number, help_heading = "Model")]
    pub mean: Option<Vec<f64>>,
    /// Normalisation std, 1 or 3 numbers [default: the model's]
    #[arg(long, value_name = "STD", num_args = 1..=3, action = ArgAction::Set, value_parser = number, help_heading = "Model")]
    pub std: Option<Vec<f64>>,
    /// Resize filter [default: the model's]
    #[arg(long, value_name = "NAME", value_parser = interpolations(), help_heading = "Model")]
    pub interpolation: Option<String>,
    /// Eval center-crop fraction, in (0, 1] [default: the model's]
    #[arg(long, value_name = "F", value_parser = number, help_heading = "Model")]
    pub crop_pct: Option<f64>,
    /// Train the head only
    #[arg(long, help_heading = "Model")]
    pub freeze_backbone: bool,
    /// Distilling families (DynamicViT): the frozen dense teacher, a hub folder [default: a frozen copy of the starting weights]
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath, help_heading = "Model")]
    pub teacher: Option<String>,
    /// Learning-rate multiplier of the family's backbone (DynamicViT: all but the predictors) [default: DynamicViT 0.01, else 1]
    #[arg(long, value_name = "S", value_parser = number, help_heading = "Model")]
    pub backbone_lr_scale: Option<f64>,
    /// Epochs at the start with the family's backbone not updated [default: DynamicViT 5, else 0]
    #[arg(long, value_name = "E", help_heading = "Model")]
    pub backbone_freeze_epochs: Option<usize>,
    /// DynamicViT's keep-ratio loss weight [default: 2 (main.py; its README uses 5 for DeiT-B)]
    #[arg(long, value_name = "W", value_parser = number, help_heading = "Optimizer")]
    pub ratio_weight: Option<f64>,

    /// Optimizer (sgd: Nesterov SGD) [default: adamw]
    #[arg(long, value_name = "NAME", value_parser = opt_names(), help_heading = "Optimizer")]
    pub opt: Option<String>,
    /// Peak learning rate [default: 1e-3; 0.01 for sgd and momentum]
    #[arg(long, value_name = "LR", value_parser = number, help_heading = "Optimizer")]
    pub lr: Option<f64>,
    /// SGD momentum [default: 0.9]
    #[arg(long, value_name = "M", value_parser = number, help_heading = "Optimizer")]
    pub momentum: Option<f64>,
    /// Weight decay (not on biases, norms, pos_embed, tokens) [default: 0.05]
    #[arg(long, value_name = "WD", value_parser = number, help_heading = "Optimizer")]
    pub weight_decay: Option<f64>,
    /// AdamW epsilon [default: 1e-8]
    #[arg(long, value_name = "EPS", value_parser = number, help_heading = "Optimizer")]
    pub opt_eps: Option<f64>,
    /// AdamW betas [default: 0.9 0.999]
    #[arg(long, value_names = ["BETA1", "BETA2"], num_args = 2, action = ArgAction::Set, value_parser = number, help_heading = "Optimizer")]
    pub opt_betas: Option<Vec<f64>>,
    /// Clip gradients to this global L2 norm [default: off]
    #[arg(long, value_name = "NORM", value_parser = number, help_heading = "Optimizer")]
    pub clip_grad: Option<f64>,
    /// Label smoothing [default: 0.1]
    #[arg(long, value_name = "S", value_parser = number, help_heading = "Optimizer")]
    pub smoothing: Option<f64>,
    /// Micro-batches per optimizer step [default: 1]
    #[arg(long, value_name = "N", value_parser = positive, help_heading = "Optimizer")]
    pub grad_accum_steps: Option<usize>,

    /// Epochs to train [default: 10]
    #[arg(long, value_name = "N", value_parser = positive, help_heading = "Schedule")]
    pub epochs: Option<usize>,
    /// Learning-rate decay [default: cosine]
    #[arg(long, value_name = "NAME", value_parser = sched_names(), help_heading = "Schedule")]
    pub sched: Option<String>,
    /// Linear warmup epochs [default: 1 if --epochs >= 5, else 0]
    #[arg(long, value_name = "E", value_parser = number, help_heading = "Schedule")]
    pub warmup_epochs: Option<f64>,
    /// Learning rate at the start of warmup [default: 1e-5]
    #[arg(long, value_name = "LR", value_parser = number, help_heading = "Schedule")]
    pub warmup_lr: Option<f64>,
    /// Floor of the cosine schedule [default: 0]
    #[arg(long, value_name = "LR", value_parser = number, help_heading = "Schedule")]
    pub min_lr: Option<f64>,
    /// Step schedule: decay every this many epochs [default: 90]
    #[arg(long, value_name = "E", value_parser = number, help_heading = "Schedule")]
    pub decay_epochs: Option<f64>,
    /// Step schedule: multiply the rate by this [default: 0.1]
    #[arg(long, value_name = "R", value_parser = number, help_heading = "Schedule")]
    pub decay_rate: Option<f64>,
    /// Change the rate every optimizer step, not every epoch
    #[arg(long, help_heading = "Schedule")]
    pub sched_on_updates: bool,

    /// Training crop (rrc: random-resized) [default: rrc]
    #[arg(long, value_name = "NAME", value_parser = crop_names(), help_heading = "Augmentation")]
    pub crop: Option<String>,
    /// --crop rrc: area fraction range [default: 0.08 1]
    #[arg(long, value_names = ["MIN", "MAX"], num_args = 2, action = ArgAction::Set, value_parser = number, help_heading = "Augmentation")]
    pub scale: Option<Vec<f64>>,
    /// --crop rrc: aspect ratio range [default: 0.75 1.333]
    #[arg(long, value_names = ["MIN", "MAX"], num_args = 2, action = ArgAction::Set, value_parser = number, help_heading = "Augmentation")]
    pub ratio: Option<Vec<f64>>,
    /// Pad-and-crop by N pixels per side (sets --crop pad) [default with --crop pad: 4]
    #[arg(long, value_name = "N", value_parser = pixels, help_heading = "Augmentation")]
    pub pad: Option<usize>,
    /// Horizontal flip probability [default: 0.5]
    #[arg(long, value_name = "P", value_parser = number, help_heading = "Augmentation")]
    pub hflip: Option<f64>,
    /// No augmentation: the eval transform, no flips
    #[arg(long, help_heading = "Augmentation")]
    pub no_aug: bool,

    /// Seed of the init, data order, split and augmentation [default: 42]
    #[arg(long, value_name = "N", value_parser = natural, help_heading = "Run")]
    pub seed: Option<u64>,
    /// Also checkpoint every this many optimizer steps [default: at epoch ends only]
    #[arg(long, value_name = "STEPS", value_parser = steps, help_heading = "Run")]
    pub checkpoint_every: Option<u64>,
    /// Stop (with a checkpoint) after this many optimizer steps [default: run to the end]
    #[arg(long, value_name = "STEPS", value_parser = steps, help_heading = "Run")]
    pub stop_after: Option<u64>,
    /// No progress bar
    #[arg(long, help_heading = "Run")]
    pub quiet: bool,
}

/// `vitrine eval`'s flags.
#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Hub folder (config.json + model.safetensors) or .safetensors file [default: built-in model]
    #[arg(long, value_name = "M", value_hint = clap::ValueHint::AnyPath)]
    pub model: Option<String>,
    /// The timm preset (vitrine presets) of a bare .safetensors --model
    #[arg(long, value_name = "A")]
    pub arch: Option<String>,
    /// Image folder (as for train) [required]
    #[arg(long, value_name = "D", value_hint = clap::ValueHint::DirPath)]
    pub data: Option<String>,
    /// Which split (test is the same as val)
    #[arg(long, value_name = "SPLIT", default_value = "val", value_parser = splits())]
    pub split: String,
    /// Images per GPU batch
    #[arg(short = 'b', long, value_name = "B", default_value = "64", value_parser = positive)]
    pub batch_size: usize,
    /// Print {"top1": %, "top5": %, "n": images} only
    #[arg(long)]
    pub json: bool,
    /// f32 (exact) or f16: matmul weights in half the memory and, where the adapter has SHADER_F16, activations between matmuls; f32 arithmetic
    #[arg(long, value_name = "P", default_value = "f32", value_parser = ["f32", "f16"])]
    pub precision: String,
    /// Image decoding threads
    #[arg(short = 'j', long, value_name = "N", default_value = "2", value_parser = positive)]
    pub workers: usize,
    /// No progress bar
    #[arg(long)]
    pub quiet: bool,
}
