//! A small flag parser: `--name value`, `--name=value`, switches, multi-valued flags.

use vitrine::{Error, Result};

/// Parsed command-line flags: `--name value`, `--switch`, and positionals.
pub struct Args {
    pub flags: Vec<(String, Option<String>)>,
    pub positional: Vec<String>,
}

const SWITCHES: &[&str] =
    &["--json", "--matmul", "--help", "-h", "--no-aug", "--freeze-backbone", "--sched-on-updates", "--quiet", "--train"];
/// Flags taking several values (up to the next flag), as timm's nargs options.
const MULTI: &[&str] = &["--model-kwargs", "--scale", "--ratio", "--mean", "--std", "--opt-betas"];

impl Args {
    pub fn parse(raw: &[String], known: &[&str]) -> Result<Self> {
        let mut flags = Vec::new();
        let mut positional = Vec::new();
        let mut it = raw.iter();
        while let Some(a) = it.next() {
            if a.starts_with('-') && a.len() > 1 {
                let (name, inline) = match a.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (a.clone(), None),
                };
                if !known.contains(&name.as_str()) {
                    return Err(Error::Input(format!("unknown option {name} (see vitrine --help)")));
                }
                if SWITCHES.contains(&name.as_str()) {
                    flags.push((name, None));
                } else if MULTI.contains(&name.as_str()) {
                    let mut vals: Vec<String> = inline.into_iter().collect();
                    while let Some(v) = it.clone().next().filter(|v| !v.starts_with("--")) {
                        vals.push(v.clone());
                        it.next();
                    }
                    if vals.is_empty() {
                        return Err(Error::Input(format!("{name} needs at least one value")));
                    }
                    flags.push((name, Some(vals.join("\u{1f}"))));
                } else {
                    let v = inline.or_else(|| it.next().cloned()).ok_or_else(|| Error::Input(format!("{name} needs a value")))?;
                    flags.push((name, Some(v)));
                }
            } else {
                positional.push(a.clone());
            }
        }
        Ok(Args { flags, positional })
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags.iter().rev().find(|(n, _)| n == name).and_then(|(_, v)| v.as_deref())
    }
    pub fn has(&self, name: &str) -> bool {
        self.flags.iter().any(|(n, _)| n == name)
    }
    pub fn usize(&self, name: &str, default: usize) -> Result<usize> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|&x| x > 0)
                .ok_or_else(|| Error::Input(format!("{name} must be a positive integer, got {v:?}"))),
        }
    }

    /// The values of a multi-valued flag.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        self.get(name).map(|v| v.split('\u{1f}').map(|s| s.to_string()).collect())
    }

    /// A number flag (any finite float).
    pub fn f64(&self, name: &str) -> Result<Option<f64>> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| Error::Input(format!("{name} must be a number, got {v:?}"))),
        }
    }

    /// A list of numbers with exactly one of the allowed lengths.
    pub fn floats(&self, name: &str, lens: &[usize]) -> Result<Option<Vec<f64>>> {
        let Some(vals) = self.list(name) else { return Ok(None) };
        let nums = vals.iter().map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite())).collect::<Option<Vec<_>>>();
        match nums {
            Some(n) if lens.contains(&n.len()) => Ok(Some(n)),
            _ => Err(Error::Input(format!("{name} takes {lens:?} numbers, got {vals:?}"))),
        }
    }
}
