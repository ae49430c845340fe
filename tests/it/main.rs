//! Loom's integration tests: real git repositories in temp dirs and the real `loom` binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cloned_ref_to_slice_refs
)]

mod agent;
mod bad_input;
mod bd_compat;
mod chaos;
mod chaos_faults;
mod commands;
mod concurrency;
mod crash;
mod demo;
mod git_trail;
mod hostile;
mod layers;
mod llm;
mod llm_server;
mod ops;
mod orchestrate;
mod pair;
mod properties;
mod ready_rules;
mod roundtrip;
mod scale_nats;
mod scale_protocol;
mod security;
mod security_files;
mod security_gate;
mod support;
mod tcp_proxy;
mod tui;
mod tui_pair;
mod tui_snapshots;
mod tui_tmux;
mod watch;
mod worktree;
