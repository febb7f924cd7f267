//! Latency percentiles and progress bars.

use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// Latencies of one kind of request.
#[derive(Debug, Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn record(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `p50 … p99 max` in milliseconds.
    pub fn summary(&mut self) -> String {
        if self.0.is_empty() {
            return "no samples".into();
        }
        self.0.sort_unstable();
        let at = |q: f64| {
            let last = self.0.len() - 1;
            // Nearest-rank percentile.
            let idx = ((q * self.0.len() as f64).ceil() as usize).clamp(1, last + 1) - 1;
            self.0[idx].as_secs_f64() * 1000.0
        };
        format!(
            "p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
            at(0.50),
            at(0.90),
            at(0.99),
            at(1.0)
        )
    }
}

pub fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Prints each invariant as ok or FAILED; failure when any failed.
pub fn verdict<'a>(checks: impl IntoIterator<Item = (&'a str, bool)>) -> ExitCode {
    let mut ok = true;
    for (name, passed) in checks {
        println!(
            "invariant       {name}: {}",
            if passed { "ok" } else { "FAILED" }
        );
        ok &= passed;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut l = Latencies::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        let s = l.summary();
        assert!(
            s.starts_with("p50 50.0 ms  p90 90.0 ms  p99 99.0 ms  max 100.0 ms"),
            "{s}"
        );
    }
}
