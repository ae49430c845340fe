//! The one redraw path. Anything that changes what is on screen asks for a frame; requests
//! are coalesced into at most one draw per 1/60 s (input draws at once: a person waits for
//! it), and nothing is drawn when nothing asked.
//! [`FrameClock`] is the pure policy; the event loop asks it after every event (background
//! work reaches the loop as app events, so nothing else needs a handle).

use std::time::{Duration, Instant};

/// At most this many frames per second (for everything but input).
pub const MAX_FPS: u32 = 60;

/// The least time between frames drawn for input.
const INPUT_FLOOR: Duration = Duration::from_millis(2);

/// When the next frame is due.
#[derive(Clone, Debug)]
pub struct FrameClock {
    min_interval: Duration,
    last_draw: Option<Instant>,
    due: Option<Instant>,
}

impl Default for FrameClock {
    fn default() -> Self {
        FrameClock::new(Duration::from_secs(1) / MAX_FPS)
    }
}

impl FrameClock {
    pub fn new(min_interval: Duration) -> FrameClock {
        FrameClock {
            min_interval,
            last_draw: None,
            due: None,
        }
    }

    /// A frame is wanted at `at` (asked at `now`): the earliest of all wishes wins, but never
    /// sooner than one interval after the last draw.
    pub fn request(&mut self, now: Instant, at: Instant) {
        let floor = self
            .last_draw
            .map_or(now, |d| d + self.min_interval)
            .max(now);
        let when = at.max(floor);
        self.due = Some(self.due.map_or(when, |d| d.min(when)));
    }

    /// Input (a key, a paste, a resize) wants its frame now: a person waits for it. Only a
    /// short floor after the last draw holds it back, so key repeat cannot flood the terminal.
    pub fn request_input(&mut self, now: Instant) {
        let floor = self.last_draw.map_or(now, |d| d + INPUT_FLOOR).max(now);
        self.due = Some(self.due.map_or(floor, |d| d.min(floor)));
    }

    /// When to draw next (`None`: nothing asked for a frame).
    pub fn due(&self) -> Option<Instant> {
        self.due
    }

    /// A frame was drawn at `now`.
    pub fn drawn(&mut self, now: Instant) {
        self.last_draw = Some(now);
        self.due = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_coalesce_and_are_rate_limited() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = FrameClock::new(ms(16));
        assert_eq!(c.due(), None, "nothing asked, nothing drawn");
        c.request(t0, t0);
        c.request(t0, t0 + ms(5));
        assert_eq!(c.due(), Some(t0), "the earliest wish");
        c.drawn(t0);
        assert_eq!(c.due(), None);
        // A burst right after a draw waits for the interval, as one frame.
        for i in 0..100 {
            c.request(t0 + ms(1), t0 + ms(1) + Duration::from_micros(i));
        }
        assert_eq!(c.due(), Some(t0 + ms(16)));
        c.drawn(t0 + ms(16));
        // A wish for later is kept for later.
        c.request(t0 + ms(20), t0 + ms(500));
        assert_eq!(c.due(), Some(t0 + ms(500)));
        c.request(t0 + ms(21), t0 + ms(21));
        assert_eq!(c.due(), Some(t0 + ms(32)), "sooner wins, within the rate");
        c.drawn(t0 + ms(32));
        // A key right after a draw does not wait for the next slot.
        c.request(t0 + ms(33), t0 + ms(33));
        c.request_input(t0 + ms(33));
        assert_eq!(c.due(), Some(t0 + ms(34)), "only the short input floor");
        c.drawn(t0 + ms(34));
        c.request_input(t0 + ms(40));
        assert_eq!(c.due(), Some(t0 + ms(40)));
    }
}
