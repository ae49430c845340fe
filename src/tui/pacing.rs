//! Streaming model text is shown a whole line at a time. Lines that arrive faster than a
//! person reads are let out smoothly, one per tick; when a backlog builds up (many lines
//! queued, or the oldest waiting too long) they catch up all at once, so the screen never lags
//! the model by more than a moment. [`commit`] is that policy, as a pure function.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The pacing parameters.
#[derive(Clone, Copy, Debug)]
pub struct Pacing {
    /// One line per this, while the backlog is small.
    pub tick: Duration,
    /// More lines than this waiting: catch up.
    pub catch_up_lines: usize,
    /// The oldest line waiting longer than this: catch up.
    pub catch_up_age: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            tick: Duration::from_millis(35),
            catch_up_lines: 8,
            catch_up_age: Duration::from_millis(600),
        }
    }
}

/// How many of `queued` lines to show now, given the age of the oldest and the time since the
/// last line was shown; and when to look again (`None`: nothing left).
pub fn commit(
    p: &Pacing,
    queued: usize,
    oldest_age: Duration,
    since_last: Duration,
) -> (usize, Option<Duration>) {
    if queued == 0 {
        return (0, None);
    }
    if queued > p.catch_up_lines || oldest_age >= p.catch_up_age {
        return (queued, None);
    }
    if since_last >= p.tick {
        let left = queued - 1;
        return (1, (left > 0).then_some(p.tick));
    }
    (0, Some(p.tick - since_last))
}

/// Text arriving in pieces, let out as whole lines by the pacing policy.
#[derive(Debug, Default)]
pub struct LineStream {
    partial: String,
    queue: VecDeque<(Instant, String)>,
    last_commit: Option<Instant>,
    pacing: Pacing,
}

impl LineStream {
    pub fn new(pacing: Pacing) -> LineStream {
        LineStream {
            pacing,
            ..LineStream::default()
        }
    }

    /// A delta of text arrived at `now`.
    pub fn push(&mut self, now: Instant, delta: &str) {
        self.partial.push_str(delta);
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            self.queue
                .push_back((now, line.trim_end_matches(['\n', '\r']).to_owned()));
        }
    }

    /// The lines to show now, and when to ask again.
    pub fn take(&mut self, now: Instant) -> (Vec<String>, Option<Duration>) {
        let oldest = self
            .queue
            .front()
            .map_or(Duration::ZERO, |(t, _)| now.saturating_duration_since(*t));
        let since = self
            .last_commit
            .map_or(Duration::MAX, |t| now.saturating_duration_since(t));
        let (n, next) = commit(&self.pacing, self.queue.len(), oldest, since);
        let out: Vec<String> = self.queue.drain(..n).map(|(_, l)| l).collect();
        if n > 0 {
            self.last_commit = Some(now);
        }
        (out, next)
    }

    /// The stream ended: everything, including an unfinished last line.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out: Vec<String> = self.queue.drain(..).map(|(_, l)| l).collect();
        if !self.partial.is_empty() {
            out.push(std::mem::take(&mut self.partial));
        }
        out
    }

    /// Whether anything waits to be shown.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.partial.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn smooth_one_line_per_tick() {
        let p = Pacing::default();
        assert_eq!(commit(&p, 0, MS(0), MS(0)), (0, None));
        assert_eq!(commit(&p, 3, MS(10), MS(100)), (1, Some(p.tick)));
        assert_eq!(commit(&p, 1, MS(10), MS(100)), (1, None));
        assert_eq!(
            commit(&p, 2, MS(10), MS(5)),
            (0, Some(p.tick - MS(5))),
            "too soon"
        );
    }

    #[test]
    fn catches_up_on_a_backlog_or_an_old_line() {
        let p = Pacing::default();
        assert_eq!(commit(&p, 9, MS(10), MS(0)), (9, None), "many lines queued");
        assert_eq!(
            commit(&p, 2, MS(600), MS(0)),
            (2, None),
            "the oldest waited too long"
        );
    }

    #[test]
    fn a_stream_lets_out_whole_lines() {
        let t0 = Instant::now();
        let mut s = LineStream::new(Pacing::default());
        s.push(t0, "Hel");
        assert_eq!(s.take(t0), (vec![], None), "no whole line yet");
        s.push(t0, "lo\nwor");
        s.push(t0, "ld\r\nthird\nfou");
        let (first, next) = s.take(t0);
        assert_eq!(first, ["Hello"]);
        assert_eq!(next, Some(Pacing::default().tick));
        assert_eq!(s.take(t0 + MS(1)).0, Vec::<String>::new(), "paced");
        assert_eq!(s.take(t0 + MS(40)).0, ["world"]);
        assert_eq!(s.finish(), ["third", "fou"]);
        assert!(s.is_empty());
    }
}
