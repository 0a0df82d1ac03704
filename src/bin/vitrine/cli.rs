//! The `vitrine` command line, declared with clap's derive API: commands,
//! flags (timm's train.py names for `train` and `eval`), help texts with
//! defaults, number checks, and bad flags turned into one `error:` line.
//!
//! `train`'s options are `Option`s without clap defaults, so that
//! `train --resume DIR` changes only the options the user gave; their defaults
//! (`TrainOptions::new`) are written in the help texts.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Args, CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

const AFTER_HELP: &str = "\
See 'vitrine <COMMAND> --help' for a command's flags and their defaults.

Environment:
  WGPU_BACKEND       vulkan, metal, dx12, gl
  WGPU_ADAPTER_NAME  a substring of the adapter's name
  WGPU_POWER_PREF    low, high
  VITRINE_MATMUL     tiled, register, subgroup: force a matmul kernel
  RUST_LOG           info (shows the adapter), debug";

/// Vision Transformers on any GPU through WebGPU.
#[derive(Parser, Debug)]
#[command(name = "vitrine", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the top-k classes of images
    #[command(args_override_self = true, allow_negative_numbers = true)]
    Classify(ClassifyArgs),
    /// Set an early-exit model's (DVT) exit thresholds for a GFLOPs budget, from a data set
    #[command(args_override_self = true)]
    Calibrate(CalibrateArgs),
    /// Print a model's architecture, parameter count, input config and tensor table
    #[command(args_override_self = true)]
    Inspect(InspectArgs),
    /// Draw what a model looks at: attention rollout (ViT, DeiT) or kept patches (DynamicViT)
    #[command(args_override_self = true)]
    Explain(ExplainArgs),
    /// Time inference, training steps (--train) or the matmul kernels (--matmul) on the GPU
    #[command(args_override_self = true, allow_negative_numbers = true)]
    Bench(BenchArgs),
    /// Time each matmul kernel variant on a model's shapes on this adapter and keep the fastest for later runs
    #[command(args_override_self = true)]
    Tune(TuneArgs),
    /// Fine-tune a checkpoint or train a preset from scratch on an image folder
    #[command(
        args_override_self = true,
        allow_negative_numbers = true,
        override_usage = "vitrine train --data D (--model M | --arch PRESET [--model-kwargs k=v ...]) --out DIR [OPTIONS]\n       \
                          vitrine train --resume DIR [OPTIONS to change]"
    )]
    Train(Box<crate::train::TrainArgs>),
    /// Print per-class and top-1 / top-5 accuracy of a model on a data split
    #[command(args_override_self = true, allow_negative_numbers = true)]
    Eval(crate::train::EvalArgs),
    /// Redraw a training run's curves (RUN_DIR/curves.svg) from its summary.csv
    #[command(args_override_self = true)]
    Plot(PlotArgs),
    /// List the timm presets (names for --arch)
    Presets,
    /// Print a shell completion script (vitrine completions bash > FILE)
    Completions {
        /// The shell
        #[arg(value_name = "SHELL")]
        shell: Shell,
    },
}

#[derive(Args, Debug)]
pub struct PlotArgs {
    /// A `vitrine train --out` folder (its summary.csv is read)
    #[arg(value_name = "RUN_DIR", value_hint = clap::ValueHint::DirPath)]
    pub run: std::path::PathBuf,
    /// Where to write the SVG [default: RUN_DIR/curves.svg]
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub out: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// Hub folder (config.json + model.safetensors) or .safetensors file [default: built-in model]
    #[arg(long, value_name = "M", value_hint = clap::ValueHint::AnyPath)]
    pub model: Option<String>,
    /// The timm preset (vitrine presets) of a bare .safetensors --model
    #[arg(long, value_name = "A")]
    pub arch: Option<String>,
    /// Classes printed per image, best first
    #[arg(long, value_name = "K", default_value = "5", value_parser = positive)]
    pub top_k: usize,
    /// Images per GPU submit
    #[arg(long, value_name = "N", default_value = "1", value_parser = positive)]
    pub batch: usize,
    /// Print one JSON object per image and line: {"image", "top_k", "logits"}
    #[arg(long)]
    pub json: bool,
    /// f32 (exact) or f16: matmul weights in half the memory and, where the adapter has SHADER_F16, activations between matmuls; f32 arithmetic
    #[arg(long, value_name = "P", default_value = "f32", value_parser = ["f32", "f16"])]
    pub precision: String,
    /// Class names, one per line, instead of the model's
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub labels: Option<String>,
    /// Early-exit models (DVT): max-softmax thresholds of every exit but the last, e.g. 0.8,0.7 ("inf": never exit there) [default: config.json's exit_thresholds]
    #[arg(long, value_name = "T,T", value_parser = thresholds)]
    pub exit_thresholds: Option<Thresholds>,
    /// The images to classify (PNG, JPEG, GIF, BMP, WebP, TIFF)
    #[arg(value_name = "IMAGE", value_hint = clap::ValueHint::FilePath)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Hub folder (config.json + model.safetensors) or .safetensors file: a ViT or DeiT
    /// (attention maps) or a DynamicViT (kept patches)
    #[arg(long, value_name = "M", value_hint = clap::ValueHint::AnyPath)]
    pub model: String,
    /// The preset (vitrine presets) of a bare .safetensors --model
    #[arg(long, value_name = "A")]
    pub arch: Option<String>,
    /// Output folder (one IMAGE-attention.png or IMAGE-kept.png per image), or a .png file for
    /// one image [default: the current directory]
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::AnyPath)]
    pub out: Option<String>,
    /// The images to explain
    #[arg(value_name = "IMAGE", required = true, value_hint = clap::ValueHint::FilePath)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Hub folder (config.json + model.safetensors) or .safetensors file [default: built-in model]
    #[arg(long, value_name = "M", value_hint = clap::ValueHint::AnyPath)]
    pub model: Option<String>,
    /// The timm preset (vitrine presets) of a bare .safetensors --model
    #[arg(long, value_name = "A")]
    pub arch: Option<String>,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A hub folder or a .safetensors file to time [default: the built-in model]
    #[arg(long, value_name = "M", value_hint = clap::ValueHint::AnyPath)]
    pub model: Option<String>,
    /// Without --model: a timm preset with random weights; with it: the preset of a bare file
    #[arg(long, value_name = "PRESET")]
    pub arch: Option<String>,
    /// Images per batch (--matmul: M = 197 x batch)
    #[arg(long, value_name = "B", default_value = "1", value_parser = positive)]
    pub batch: usize,
    /// Timed iterations
    #[arg(long, value_name = "N", default_value = "10", value_parser = positive)]
    pub iters: usize,
    /// Time training steps (forward, loss, backward, AdamW)
    #[arg(long)]
    pub train: bool,
    /// f32 (exact) or f16: matmul weights in half the memory and, where the adapter has SHADER_F16, activations between matmuls; f32 arithmetic
    #[arg(long, value_name = "P", default_value = "f32", value_parser = ["f32", "f16"])]
    pub precision: String,
    /// Print the GFLOP/s of each matmul kernel variant
    #[arg(long)]
    pub matmul: bool,
    /// With --matmul: only this variant (tiled, register, subgroup) [default: all the adapter has]
    #[arg(long, value_name = "K")]
    pub kernel: Option<String>,
    /// Early-exit models (DVT): thresholds to time, as for classify [default: config.json's]
    #[arg(long, value_name = "T,T", value_parser = thresholds)]
    pub exit_thresholds: Option<Thresholds>,
    /// Early-exit models (DVT): GFLOPs budgets to calibrate thresholds for on the timed images (the official rule) and time [default: two, a third and two thirds of the way from the first exit's cost to the last's]
    #[arg(long, value_name = "G,G", value_parser = thresholds)]
    pub budgets: Option<Thresholds>,
    /// Early-exit models (DVT): a preset timed beside the cascade, with random weights (e.g. t2t_vit_12)
    #[arg(long, value_name = "PRESET")]
    pub compare: Option<String>,
    /// Early-exit models (DVT): images to time the cascade on (PNG, JPEG, ...), cycled to fill
    /// the batch [default: seeded noise images]
    #[arg(long, value_name = "IMAGE", num_args = 1.., value_hint = clap::ValueHint::FilePath)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct TuneArgs {
    /// A hub folder or a .safetensors file whose shapes to tune [default: the built-in model]
    #[arg(long, value_name = "M", value_hint = clap::ValueHint::AnyPath)]
    pub model: Option<String>,
    /// Without --model: a timm preset (random weights: only shapes matter); with it: the preset of a bare file
    #[arg(long, value_name = "PRESET")]
    pub arch: Option<String>,
    /// Batch sizes to tune for (inference; with --train also the training step's)
    #[arg(long, value_name = "B", num_args = 1.., default_value = "1", value_parser = positive)]
    pub batch: Vec<usize>,
    /// Also tune the training step's shapes (forward and backward) at each batch size
    #[arg(long)]
    pub train: bool,
    /// Timed runs per variant and shape (the median counts)
    #[arg(long, value_name = "N", default_value = "5", value_parser = positive)]
    pub iters: usize,
    /// Print the stored choices and exit
    #[arg(long, conflicts_with = "clear")]
    pub show: bool,
    /// Delete this adapter's stored choices (the rule decides again) and exit
    #[arg(long)]
    pub clear: bool,
}

#[derive(Args, Debug)]
pub struct CalibrateArgs {
    /// The model's hub folder (config.json + model.safetensors); its config.json gets the thresholds
    #[arg(long, value_name = "M", value_hint = clap::ValueHint::DirPath)]
    pub model: String,
    /// Image folder (as for train)
    #[arg(long, value_name = "D", value_hint = clap::ValueHint::DirPath)]
    pub data: String,
    /// Which split to calibrate on (the official code uses training images)
    #[arg(long, value_name = "SPLIT", default_value = "train", value_parser = ["train", "val", "test"])]
    pub split: String,
    /// Mean GFLOPs per image allowed: the thresholds of the most accurate official budget row within it
    #[arg(long, value_name = "GFLOPS", value_parser = number)]
    pub budget: f64,
    /// Use at most N images (the first N of a seeded shuffle) [default: all]
    #[arg(long, value_name = "N", value_parser = positive)]
    pub max_images: Option<usize>,
    /// Images per GPU batch
    #[arg(short = 'b', long, value_name = "B", default_value = "32", value_parser = positive)]
    pub batch_size: usize,
    /// Image decoding threads
    #[arg(short = 'j', long, value_name = "N", default_value = "2", value_parser = positive)]
    pub workers: usize,
    /// Print the thresholds without writing config.json
    #[arg(long)]
    pub dry_run: bool,
    /// Print the whole budget curve and the choice as JSON
    #[arg(long)]
    pub json: bool,
    /// No progress bar
    #[arg(long)]
    pub quiet: bool,
}

/// `--exit-thresholds`' values.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds(pub Vec<f32>);

/// Comma-separated thresholds (numbers or inf).
pub fn thresholds(s: &str) -> Result<Thresholds, String> {
    s.split(',')
        .map(|t| {
            let t = t.trim();
            t.parse::<f32>().ok().filter(|x| !x.is_nan()).ok_or_else(|| format!("must be comma-separated numbers (or inf), got {t:?}"))
        })
        .collect::<Result<Vec<f32>, String>>()
        .map(Thresholds)
}

/// A positive integer (counts, sizes).
pub fn positive(s: &str) -> Result<usize, String> {
    s.parse::<usize>().ok().filter(|&x| x > 0).ok_or_else(|| format!("must be a positive integer, got {s:?}"))
}

/// Any finite number.
pub fn number(s: &str) -> Result<f64, String> {
    s.parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| format!("must be a number, got {s:?}"))
}

/// A seed.
pub fn natural(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("must be a non-negative integer, got {s:?}"))
}

/// A count of optimizer steps.
pub fn steps(s: &str) -> Result<u64, String> {
    s.parse().map_err(|_| format!("must be a step count, got {s:?}"))
}

/// A count of pixels.
pub fn pixels(s: &str) -> Result<usize, String> {
    s.parse().map_err(|_| format!("must be a pixel count, got {s:?}"))
}

/// What the command line asks for: a command, or text already printed
/// (`--help`, `--version`, or the help of a bare `vitrine`).
pub enum Parsed {
    Run(Box<Command>),
    Printed,
}

/// Parses `vitrine`'s arguments (`raw` without the program name). A parse
/// error comes back as one line (without the `error: ` prefix) ending in a hint.
pub fn parse(raw: &[String]) -> Result<Parsed, String> {
    let argv = std::iter::once("vitrine".to_string()).chain(raw.iter().cloned());
    match Cli::try_parse_from(argv) {
        Ok(Cli { command: Some(c) }) => Ok(Parsed::Run(Box::new(c))),
        Ok(Cli { command: None }) => {
            let _ = Cli::command().print_help();
            Ok(Parsed::Printed)
        }
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            Ok(Parsed::Printed)
        }
        Err(e) => Err(one_line(&e, subcommand(raw))),
    }
}

/// The subcommand `raw` names, if any (for the `--help` hint).
fn subcommand(raw: &[String]) -> Option<String> {
    let first = raw.first()?;
    Cli::command().get_subcommands().any(|c| c.get_name() == first).then(|| first.clone())
}

fn context(e: &clap::Error, kind: ContextKind) -> Option<String> {
    match e.get(kind)? {
        ContextValue::String(s) => Some(s.clone()),
        ContextValue::Strings(v) => Some(v.join(", ")),
        ContextValue::StyledStr(s) => Some(s.to_string()),
        ContextValue::StyledStrs(v) => Some(v.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
        ContextValue::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `--top-k <K>` -> `--top-k`.
fn flag_name(arg: &str) -> String {
    arg.split([' ', '=']).next().unwrap_or(arg).to_string()
}

/// One line for a parse error: vitrine's wording where it had one, else clap's first line.
fn one_line(e: &clap::Error, cmd: Option<String>) -> String {
    let hint = match &cmd {
        Some(c) => format!("(see vitrine {c} --help)"),
        None => "(see vitrine --help)".to_string(),
    };
    let arg = context(e, ContextKind::InvalidArg).unwrap_or_default();
    let flag = flag_name(&arg);
    let value = context(e, ContextKind::InvalidValue).unwrap_or_default();
    let msg = match e.kind() {
        ErrorKind::InvalidSubcommand => {
            let names: Vec<String> = Cli::command().get_subcommands().map(|c| c.get_name().to_string()).collect();
            let sub = context(e, ContextKind::InvalidSubcommand).unwrap_or_default();
            return format!("unknown command {sub:?} ({})", names.join(", "));
        }
        ErrorKind::UnknownArgument if arg.starts_with('-') => match context(e, ContextKind::SuggestedArg) {
            Some(s) => format!("unknown option {flag} (did you mean {s}?)"),
            None => format!("unknown option {flag}"),
        },
        ErrorKind::UnknownArgument => format!("unexpected argument {arg:?}"),
        ErrorKind::InvalidValue if value.is_empty() => format!("{flag} needs a value"),
        ErrorKind::InvalidValue => match context(e, ContextKind::ValidValue) {
            Some(valid) => format!("{flag} {value:?} is not supported ({valid})"),
            None => format!("{flag}: invalid value {value:?}"),
        },
        ErrorKind::ValueValidation => match std::error::Error::source(e) {
            Some(why) => format!("{flag} {why}"),
            None => format!("{flag}: invalid value {value:?}"),
        },
        ErrorKind::WrongNumberOfValues | ErrorKind::TooFewValues => {
            let want = context(e, ContextKind::ExpectedNumValues).or_else(|| context(e, ContextKind::MinValues));
            let got = context(e, ContextKind::ActualNumValues).unwrap_or_default();
            match want {
                Some(n) if e.kind() == ErrorKind::TooFewValues => format!("{flag} takes at least {n} values, got {got}"),
                Some(n) => format!("{flag} takes {n} values, got {got}"),
                None => clap_first_line(e),
            }
        }
        ErrorKind::MissingRequiredArgument => format!("missing {arg}"),
        _ => clap_first_line(e),
    };
    format!("{msg} {hint}")
}

/// clap's own message, first line, without its `error: `.
fn clap_first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or("bad arguments");
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::TrainArgs;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    fn train(args: &[&str]) -> Result<TrainArgs, clap::Error> {
        let argv = ["vitrine", "train"].iter().chain(args).copied();
        match Cli::try_parse_from(argv)?.command {
            Some(Command::Train(t)) => Ok(*t),
            other => panic!("not train: {other:?}"),
        }
    }

    #[test]
    fn flags_parse_as_the_hand_written_parser_did() -> Result<(), clap::Error> {
        let t = train(&["--lr", "1", "--lr=-2", "-b=16", "--model-kwargs", "a=1", "b=(2,2)", "--crop-pct", "1"])?;
        assert_eq!(t.lr, Some(-2.0), "last one wins, negative numbers are values");
        assert_eq!(t.batch_size, Some(16));
        assert_eq!(t.model_kwargs, Some(vec!["a=1".to_string(), "b=(2,2)".to_string()]));
        assert_eq!(t.crop_pct, Some(1.0));
        let t = train(&["--mean", "-0.5", "0", "0.5", "--std", "0.2", "-j", "3", "--output", "o", "--no-aug"])?;
        assert_eq!(t.mean, Some(vec![-0.5, 0.0, 0.5]));
        assert_eq!(t.std, Some(vec![0.2]));
        assert_eq!((t.workers, t.out.as_deref(), t.no_aug, t.quiet), (Some(3), Some("o"), true, false));
        let t = train(&["--batch-size", "8", "--scale", "0.5", "1", "--opt", "nesterov", "--sched", "none"])?;
        assert_eq!((t.batch_size, t.scale), (Some(8), Some(vec![0.5, 1.0])));
        assert!(matches!(t.opt.as_deref(), Some("sgd" | "nesterov")), "{:?}", t.opt);
        assert!(t.epochs.is_none() && t.seed.is_none() && t.data.is_none(), "not given stays None");
        let t = train(&["--model-kwargs", "a=1", "--model-kwargs", "b=2", "--ratio", "1", "2", "--ratio", "0.5", "1.5"])?;
        assert_eq!(t.model_kwargs, Some(vec!["b=2".to_string()]), "a repeated list flag: the last one");
        assert_eq!(t.ratio, Some(vec![0.5, 1.5]));
        Ok(())
    }

    #[test]
    fn bad_flags_are_one_line() {
        let err = |args: &[&str]| {
            let raw: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            match parse(&raw) {
                Err(e) => e,
                Ok(_) => panic!("{args:?} parsed"),
            }
        };
        assert_eq!(err(&["train", "--frob=3"]), "unknown option --frob (see vitrine train --help)");
        assert_eq!(err(&["train", "-b", "0"]), "--batch-size must be a positive integer, got \"0\" (see vitrine train --help)");
        assert_eq!(err(&["train", "--scale", "1"]), "--scale takes 2 values, got 1 (see vitrine train --help)");
        assert_eq!(err(&["eval", "--data"]), "--data needs a value (see vitrine eval --help)");
        assert!(err(&["classify", "--top-k", "zero"]).starts_with("--top-k must be a positive integer"));
        assert!(err(&["frobnicate"]).starts_with("unknown command \"frobnicate\""));
        assert!(!err(&["completions"]).contains('\n'));
    }
}
