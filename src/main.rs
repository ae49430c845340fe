//! The `loom` binary: parses arguments and hands over to the library.

use clap::Parser;

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
