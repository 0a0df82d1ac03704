//! A progress bar on stderr: redrawn in place on a terminal (at most 10 times
//! a second), one line per 10 % otherwise (logs, CI).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A progress bar for one run of work (an epoch, an evaluation): title, bar,
/// `done/total`, a caller's stats text, images per second and time left.
pub struct Progress {
    title: String,
    total: usize,
    start: Instant,
    last_draw: Option<Instant>,
    tty: bool,
    next_pct: usize,
    enabled: bool,
}

fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

impl Progress {
    /// A bar for `total` units of work; `enabled = false` draws nothing.
    pub fn new(title: impl Into<String>, total: usize, enabled: bool) -> Self {
        Progress {
            title: title.into(),
            total: total.max(1),
            start: Instant::now(),
            last_draw: None,
            tty: std::io::stderr().is_terminal(),
            next_pct: 10,
            enabled,
        }
    }

    /// Seconds since the bar was made.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Reports `done` units (out of this bar's share `done - first` timed
    /// since creation), `images` processed so far and a stats text.
    pub fn update(&mut self, done: usize, first: usize, images: usize, stats: &str) {
        if !self.enabled {
            return;
        }
        let pct = done * 100 / self.total;
        let now = Instant::now();
        let draw = if self.tty {
            self.last_draw.is_none_or(|t| now - t >= Duration::from_millis(100)) || done == self.total
        } else {
            pct >= self.next_pct && done < self.total
        };
        if !draw {
            return;
        }
        self.last_draw = Some(now);
        while self.next_pct <= pct {
            self.next_pct += 10;
        }
        let secs = self.elapsed();
        let ips = images as f64 / secs.max(1e-9);
        let rate = (done - first.min(done)) as f64 / secs.max(1e-9);
        let eta = if rate > 0.0 { clock((self.total - done) as f64 / rate) } else { "?".into() };
        let filled = done * 20 / self.total;
        let bar: String = (0..20).map(|i| if i < filled { '#' } else { '.' }).collect();
        let line = format!("{} [{bar}] {done}/{} {stats} {ips:.0} img/s ETA {eta}", self.title, self.total);
        let mut err = std::io::stderr().lock();
        let _ = if self.tty { write!(err, "\r{line}\x1b[K") } else { writeln!(err, "{line}") };
        let _ = err.flush();
    }

    /// Clears the bar's line (terminal only).
    pub fn finish(&mut self) {
        if self.enabled && self.tty && self.last_draw.is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}
