//! [`EventBus`]: a broadcast channel for live subscribers and a bounded recent history (per
//! bead, and overall) for subscribers that arrive late.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use super::Event;

/// Recent events kept per bead and overall, for late subscribers.
const PER_BEAD: usize = 500;
const OVERALL: usize = 2000;

#[derive(Default)]
struct History {
    per_bead: HashMap<String, VecDeque<Event>>,
    overall: VecDeque<Event>,
}

/// Publishes events to live subscribers and keeps a bounded recent history.
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    history: Mutex<History>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventBus")
    }
}

impl EventBus {
    /// A bus whose slow subscribers may lag by up to `capacity` events (then they skip ahead).
    pub fn new(capacity: usize) -> Arc<EventBus> {
        let (tx, _) = broadcast::channel(capacity.max(16));
        Arc::new(EventBus {
            tx,
            history: Mutex::new(History::default()),
        })
    }

    pub fn publish(&self, event: Event) {
        if let Ok(mut h) = self.history.lock() {
            if let Some(id) = event.bead_id() {
                let q = h.per_bead.entry(id.to_owned()).or_default();
                q.push_back(event.clone());
                if q.len() > PER_BEAD {
                    q.pop_front();
                }
            }
            h.overall.push_back(event.clone());
            if h.overall.len() > OVERALL {
                h.overall.pop_front();
            }
        }
        let _ = self.tx.send(event); // no subscriber is fine
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Recent events of `bead` (or of everything), oldest first.
    pub fn recent(&self, bead: Option<&str>) -> Vec<Event> {
        let Ok(h) = self.history.lock() else {
            return Vec::new();
        };
        match bead {
            Some(id) => h
                .per_bead
                .get(id)
                .map(|q| q.iter().cloned().collect())
                .unwrap_or_default(),
            None => h.overall.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{EventKind, Stage};
    use super::*;

    fn stage(bead: &str, n: u32) -> Event {
        Event::about(
            bead,
            EventKind::StageChanged {
                stage: Stage::Implementing,
                detail: format!("s{n}"),
            },
        )
    }

    #[tokio::test]
    async fn live_and_late_subscribers() {
        let bus = EventBus::new(64);
        let mut live = bus.subscribe();
        for n in 0..600 {
            bus.publish(stage("a", n));
        }
        bus.publish(stage("b", 0));
        assert!(matches!(
            live.recv().await,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_))
        ));
        let a = bus.recent(Some("a"));
        assert_eq!(a.len(), PER_BEAD, "bounded per bead");
        assert!(matches!(
            &a[a.len() - 1].kind,
            EventKind::StageChanged { detail, .. } if detail == "s599"
        ));
        assert_eq!(bus.recent(Some("b")).len(), 1);
        assert_eq!(bus.recent(None).len(), 601);
        assert!(bus.recent(Some("nobody")).is_empty());
    }
}
