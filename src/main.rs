//! The `loom` binary: parses arguments and hands over to the library.

use clap::Parser;

/// mimalloc instead of the system allocator: loading a large store makes millions of small
/// allocations across threads, and glibc's arenas turn that into page faults (2.5x slower on
/// `loom ready` over 100k beads; see docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = loom::cli::Cli::parse();
    let code = match loom::cli::run(cli) {
        Ok(code) => code,
        Err(loom::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            loom::cli::report(&e);
            e.exit_code()
        }
    };
    std::process::exit(code);
}
