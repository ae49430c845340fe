//! The terminal UI (`loom` with no arguments): the kanban board, bead detail, live logs,
//! agents, decisions and usage, driving the same orchestrator as `loom run` through the event
//! protocol. One async loop reads terminal and app events; widgets only change state and ask
//! for frames; every git, disk and model operation runs in the background.

pub mod app;
pub mod external;
pub mod forms;
pub mod frame;
pub mod keys;
pub mod live;
pub mod logs;
pub mod model;
pub mod pacing;
pub mod pair;
pub mod runtime;
pub mod settings;
pub mod theme;
pub mod ui;
pub mod worker;
