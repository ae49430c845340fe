//! Writes a synthetic bead repository for benchmarks:
//! `cargo run --release --example synth_repo -- --count 100000 --format jsonl --out /tmp/r100k`
//! With `--git`, the directory becomes a git repository with everything committed.

use std::path::PathBuf;
use std::process::Command;

use clap::Parser;
use loom::store::{Format, Layout, jsonl, yaml};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    #[arg(long, default_value = "jsonl")]
    format: String,
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// git init and commit everything.
    #[arg(long)]
    git: bool,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let format: Format = args.format.parse()?;
    let layout = Layout::with_format(&args.out, format);
    std::fs::create_dir_all(&layout.beads_dir)?;
    std::fs::write(
        layout.beads_dir.join("config.yaml"),
        "issue-prefix: \"syn\"\n",
    )?;
    let beads = loom::synth::beads(args.count, "syn", args.seed);
    match format {
        Format::Jsonl => std::fs::write(
            layout.beads_dir.join("issues.jsonl"),
            jsonl::render_all(&beads)?,
        )?,
        Format::Yaml => {
            std::fs::create_dir_all(layout.yaml_dir())?;
            for b in &beads {
                std::fs::write(layout.yaml_path(&b.id), yaml::render(b)?)?;
            }
        }
    }
    if args.git {
        let git = |a: &[&str]| Command::new("git").args(a).current_dir(&args.out).status();
        git(&["init", "-q", "-b", "main"])?;
        git(&["add", "-A"])?;
        git(&[
            "-c",
            "user.name=synth",
            "-c",
            "user.email=synth@example.com",
            "commit",
            "-qm",
            "synthetic beads",
        ])?;
    }
    eprintln!(
        "wrote {} beads ({}) to {}",
        beads.len(),
        format.name(),
        args.out.display()
    );
    Ok(())
}
