//! The `loom` binary: parses arguments and hands over to the library.

use clap::Parser;

/// mimalloc instead of the system allocator: loading a large store makes millions of small
/// allocations across threads, and glibc's arenas turn that into page faults (2.5x slower on
/// `loom ready` over 100k beads; see docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // Loom runs agent commands under itself: the supervisor restricts a thread and starts
    // the command from it, then ends everything the command started.
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "__sandbox-exec") {
        std::process::exit(loom::agent::sandbox::sandbox_exec(&args[2..]));
    }
    // Not dumpable: no other process of this user — an agent's command included, even as
    // root once its capabilities are dropped — may read this process's memory or
    // /proc/<pid>/environ, where the API key is.
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    let cli = loom::cli::Cli::parse();
    let code = match loom::cli::run(cli) {
        Ok(code) => code,
        Err(loom::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            loom::cli::report(&e);
            e.exit_code()
        }
    };
    // A discarded sandbox session is ended on a thread of its own: let it finish.
    loom::agent::sandbox::finish_cleanups();
    std::process::exit(code);
}
