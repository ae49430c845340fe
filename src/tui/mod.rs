//! The terminal UI (`loom` with no arguments): the kanban board, bead detail, live logs,
//! agents, decisions and usage, driving the same orchestrator as `loom run` through the event
//! protocol. One async loop reads terminal and app events; widgets only change state and ask
//! for frames; every git, disk and model operation runs in the background.

pub mod app;
pub mod deps;
pub(crate) mod external;
pub(crate) mod forms;
pub(crate) mod frame;
pub mod keys;
pub mod list;
pub(crate) mod live;
pub(crate) mod logs;
pub mod model;
pub mod notify;
pub(crate) mod pacing;
pub mod pair;
pub mod runtime;
pub(crate) mod settings;
pub mod theme;
pub mod ui;
pub mod work;
pub mod worker;

/// The item after (or before) `at` in `all`, wrapping around (the first if `at` is not in it).
pub(crate) fn step_in<T: Copy + PartialEq>(all: &[T], at: T, forward: bool) -> T {
    let n = all.len();
    let i = all.iter().position(|x| *x == at).unwrap_or(0);
    all[if forward {
        (i + 1) % n
    } else {
        (i + n - 1) % n
    }]
}
