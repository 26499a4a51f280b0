//! Time spent per kind of operation inside a forward pass, for `hdnet bench --profile`.
//! The CPU backend computes eagerly, so the wall time around an operation is its cost; on a
//! GPU the timings only mean something after a device sync (the bench command does not profile
//! there).

use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Accumulates wall time per operation name; a switched-off stopwatch only runs the closures.
#[derive(Debug, Default)]
pub struct Stopwatch {
    totals: Option<RefCell<Vec<(&'static str, Duration, usize)>>>,
}

impl Stopwatch {
    pub fn off() -> Self {
        Self { totals: None }
    }

    pub fn on() -> Self {
        Self { totals: Some(RefCell::new(Vec::new())) }
    }

    /// Runs `f`, adding its wall time to `op`.
    pub fn time<T>(&self, op: &'static str, f: impl FnOnce() -> T) -> T {
        let Some(totals) = &self.totals else { return f() };
        let start = Instant::now();
        let out = f();
        let spent = start.elapsed();
        let mut totals = totals.borrow_mut();
        match totals.iter_mut().find(|(name, _, _)| *name == op) {
            Some(entry) => {
                entry.1 += spent;
                entry.2 += 1;
            }
            None => totals.push((op, spent, 1)),
        }
        out
    }

    /// (operation, total time, calls), in order of first use.
    pub fn totals(&self) -> Vec<(&'static str, Duration, usize)> {
        self.totals.as_ref().map(|t| t.borrow().clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopwatch_sums_calls_per_operation() {
        let watch = Stopwatch::on();
        for _ in 0..3 {
            watch.time("sleep", || std::thread::sleep(Duration::from_millis(2)));
        }
        assert_eq!(watch.time("value", || 7), 7);
        let totals = watch.totals();
        assert_eq!(totals.iter().map(|(n, _, c)| (*n, *c)).collect::<Vec<_>>(), [("sleep", 3), ("value", 1)]);
        assert!(totals[0].1 >= Duration::from_millis(6));
        assert!(Stopwatch::off().totals().is_empty());
    }
}
