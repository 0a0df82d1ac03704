//! Training curves as a picture: `curves.svg`, written beside `summary.csv` at every
//! epoch and redrawn by `vitrine plot RUN_DIR`. Three panels share the epoch axis: the
//! loss (training, label-smoothed; validation, plain cross-entropy), the top-1 accuracy
//! (training batches; validation) and the learning rate. Plain SVG 1.1, no script, no
//! external font: it opens in any browser and renders on GitHub.

use super::state::EpochRecord;
use crate::error::{Error, Result};
use std::fmt::Write;

const PANEL_W: f64 = 300.0;
const PANEL_H: f64 = 230.0;
/// Margins inside a panel: left (tick labels), right, top (title), bottom (epoch labels).
const MARGIN: [f64; 4] = [58.0, 14.0, 34.0, 44.0];
const TRAIN: &str = "#1f77b4";
const VAL: &str = "#d62728";
const LR: &str = "#2ca02c";

/// The title a run's curves get: its architecture and its data folder's name.
pub fn title(architecture: &str, data: &std::path::Path) -> String {
    format!("{architecture} on {}", data.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
}

/// One line of a panel: its legend name, colour and (epoch, value) points.
struct Series {
    name: &'static str,
    color: &'static str,
    points: Vec<(f64, f64)>,
}

/// The curves of `history` (one record per epoch) as an SVG document; `title` heads it.
pub fn svg(history: &[EpochRecord], title: &str) -> String {
    let series = |name, color, f: &dyn Fn(&EpochRecord) -> Option<f64>| Series {
        name,
        color,
        points: history.iter().filter_map(|r| f(r).filter(|v| v.is_finite()).map(|v| (r.epoch as f64, v))).collect(),
    };
    let panels = [
        ("Loss", vec![series("train", TRAIN, &|r| Some(r.train_loss)), series("val", VAL, &|r| r.val_loss)]),
        ("Top-1 accuracy (%)", vec![series("train", TRAIN, &|r| Some(r.train_acc)), series("val", VAL, &|r| r.val_top1)]),
        ("Learning rate", vec![series("lr", LR, &|r| Some(r.lr))]),
    ];
    let width = PANEL_W * panels.len() as f64;
    let height = PANEL_H + 30.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(out, r#"<text x="{}" y="18" text-anchor="middle" font-size="13">{}</text>"#, width / 2.0, escape(title));
    let epochs = history.iter().map(|r| r.epoch as f64);
    let (e0, e1) = (epochs.clone().fold(f64::INFINITY, f64::min), epochs.fold(f64::NEG_INFINITY, f64::max));
    let x_range = if e0.is_finite() { (e0.min(e1 - 1.0).max(0.0), e1.max(e0 + 1.0)) } else { (0.0, 1.0) };
    for (i, (name, lines)) in panels.iter().enumerate() {
        panel(&mut out, 30.0, i as f64 * PANEL_W, name, lines, x_range);
    }
    out.push_str("</svg>\n");
    out
}

/// Draws one panel with its top-left corner at (`x0`, `top`).
fn panel(out: &mut String, top: f64, x0: f64, title: &str, lines: &[Series], (xa, xb): (f64, f64)) {
    let [ml, mr, mt, mb] = MARGIN;
    let (left, right, y_top, bottom) = (x0 + ml, x0 + PANEL_W - mr, top + mt, top + PANEL_H - mb);
    let values = lines.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (lo, hi) = (values.clone().fold(f64::INFINITY, f64::min), values.fold(f64::NEG_INFINITY, f64::max));
    let (ya, yb, ystep) = if lo.is_finite() { nice_range(lo, hi) } else { (0.0, 1.0, 0.25) };
    let px = |x: f64| left + (x - xa) / (xb - xa) * (right - left);
    let py = |y: f64| bottom - (y - ya) / (yb - ya) * (bottom - y_top);
    let _ = writeln!(out, r#"<g class="panel" data-title="{}">"#, escape(title));
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle" font-weight="bold">{}</text>"#,
        (left + right) / 2.0,
        top + 14.0,
        escape(title)
    );
    // Grid and y ticks.
    let decimals = decimals(ystep);
    let scientific = ystep < 1e-3 || ya.abs().max(yb.abs()) >= 1e6;
    let mut k = 0.0;
    while ya + k * ystep <= yb + ystep * 1e-6 {
        let y = ya + k * ystep;
        let v = py(y);
        let _ = writeln!(out, r##"<line x1="{left:.1}" y1="{v:.1}" x2="{right:.1}" y2="{v:.1}" stroke="#e5e5e5"/>"##);
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 5.0,
            v + 4.0,
            tick_label(y, decimals, scientific)
        );
        k += 1.0;
    }
    // X ticks: whole epochs, at most about 8 of them.
    let xstep = ((xb - xa) / 8.0).ceil().max(1.0);
    let mut x = xa.ceil();
    while x <= xb + 1e-9 {
        let h = px(x);
        let _ = writeln!(out, r##"<line x1="{h:.1}" y1="{bottom:.1}" x2="{h:.1}" y2="{:.1}" stroke="#333"/>"##, bottom + 4.0);
        let _ = writeln!(out, r#"<text x="{h:.1}" y="{:.1}" text-anchor="middle">{x}</text>"#, bottom + 16.0);
        x += xstep;
    }
    let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">epoch</text>"#, (left + right) / 2.0, bottom + 32.0);
    let _ = writeln!(
        out,
        r##"<polyline points="{left:.1},{y_top:.1} {left:.1},{bottom:.1} {right:.1},{bottom:.1}" fill="none" stroke="#333"/>"##
    );
    // The lines, each with a dot per epoch, and the legend: top right, or bottom right when
    // the lines end in the upper half (accuracy).
    let ends_high = lines.iter().filter_map(|s| s.points.last()).any(|&(_, y)| py(y) < (y_top + bottom) / 2.0);
    let legend_top = if ends_high { bottom - 12.0 - 15.0 * lines.len() as f64 } else { y_top };
    for (k, s) in lines.iter().enumerate() {
        if s.points.is_empty() {
            continue;
        }
        let pts: Vec<String> = s.points.iter().map(|&(x, y)| format!("{:.2},{:.2}", px(x), py(y))).collect();
        let _ = writeln!(
            out,
            r#"<polyline class="series" data-name="{}" points="{}" fill="none" stroke="{}" stroke-width="2"/>"#,
            s.name,
            pts.join(" "),
            s.color
        );
        for &(x, y) in &s.points {
            let _ = writeln!(out, r#"<circle cx="{:.2}" cy="{:.2}" r="2.5" fill="{}"/>"#, px(x), py(y), s.color);
        }
        let (lx, ly) = (right - 60.0, legend_top + 12.0 + 15.0 * k as f64);
        let _ =
            writeln!(out, r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"/>"#, lx + 16.0, s.color);
        let _ = writeln!(out, r#"<text x="{:.1}" y="{:.1}">{}</text>"#, lx + 20.0, ly + 4.0, s.name);
    }
    out.push_str("</g>\n");
}

/// A y range covering `lo..=hi` on round ticks: (first, last, step), about 5 steps.
fn nice_range(lo: f64, hi: f64) -> (f64, f64, f64) {
    let span = if hi > lo { hi - lo } else { lo.abs().max(1e-12) };
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let (a, b) = ((lo / step).floor() * step, (hi / step).ceil() * step);
    if b > a {
        (a, b, step)
    } else {
        (a - step, b + step, step)
    }
}

/// Digits after the point that tell ticks `step` apart.
fn decimals(step: f64) -> usize {
    let d = -step.log10().floor();
    if d > 0.0 {
        d as usize + usize::from((step * 10f64.powf(d)).fract().abs() > 1e-6)
    } else {
        0
    }
}

/// A tick's text: fixed-point with `decimals` digits, or (tiny or huge ticks) `2.5e-4`.
fn tick_label(v: f64, decimals: usize, scientific: bool) -> String {
    match (scientific, v.abs() < 1e-12) {
        (true, true) => "0".into(),
        (true, false) => format!("{v:.1e}"),
        _ => format!("{v:.decimals$}"),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `summary.csv`: one row per epoch (the columns of [`EpochRecord`]; validation columns
/// empty without a validation set).
pub fn summary_csv(history: &[EpochRecord]) -> String {
    let mut csv = String::from("epoch,lr,train_loss,train_acc,val_loss,val_top1,val_top5,secs,images_per_s\n");
    let opt = |v: Option<f64>| v.map(|x| format!("{x:.6}")).unwrap_or_default();
    for r in history {
        let _ = writeln!(
            csv,
            "{},{:.6e},{:.6},{:.4},{},{},{},{:.1},{:.1}",
            r.epoch,
            r.lr,
            r.train_loss,
            r.train_acc,
            opt(r.val_loss),
            opt(r.val_top1),
            opt(r.val_top5),
            r.secs,
            r.images_per_s
        );
    }
    csv
}

/// The epoch records of a `summary.csv` (as training writes it); `origin` names it in errors.
pub fn parse_summary(text: &str, origin: &str) -> Result<Vec<EpochRecord>> {
    let bad = |m: String| Error::Input(format!("{origin}: {m}"));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().ok_or_else(|| bad("empty file".into()))?.split(',').map(str::trim).collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let need = |name: &str| col(name).ok_or_else(|| bad(format!("no {name} column")));
    let (ep, lr, tl, ta) = (need("epoch")?, need("lr")?, need("train_loss")?, need("train_acc")?);
    let (vl, v1, v5, secs, ips) = (col("val_loss"), col("val_top1"), col("val_top5"), col("secs"), col("images_per_s"));
    let mut out = Vec::new();
    for (n, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let num = |i: usize| -> Result<f64> {
            let c = cells.get(i).ok_or_else(|| bad(format!("row {} has {} columns", n + 1, cells.len())))?;
            c.parse::<f64>().map_err(|_| bad(format!("row {}: {c:?} is not a number", n + 1)))
        };
        let opt = |i: Option<usize>| -> Result<Option<f64>> {
            match i.and_then(|i| cells.get(i)) {
                None | Some(&"") => Ok(None),
                Some(_) => i.map(num).transpose(),
            }
        };
        let epoch = num(ep)?;
        if !(epoch >= 0.0 && epoch.fract() == 0.0 && epoch < 1e9) {
            return Err(bad(format!("row {}: epoch {epoch} is not a whole number", n + 1)));
        }
        out.push(EpochRecord {
            epoch: epoch as usize,
            lr: num(lr)?,
            train_loss: num(tl)?,
            train_acc: num(ta)?,
            val_loss: opt(vl)?,
            val_top1: opt(v1)?,
            val_top5: opt(v5)?,
            secs: opt(secs)?.unwrap_or(0.0),
            images_per_s: opt(ips)?.unwrap_or(0.0),
        });
    }
    Ok(out)
}
