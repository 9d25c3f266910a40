//! `cargo run --release -p fuzz -- [TARGET…] [--seconds N | --inputs N] [--seed S] [--jobs J]`:
//! fuzzes each reader (all by default), each in a process of its own so that a crash of one
//! cannot hide the others' figures, and prints a table; findings are written to
//! `fuzz/findings/`. Exit code 1 when anything was found.

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use clap::Parser;
use fuzz::{Budget, TARGETS, fuzz, guard, target};

#[global_allocator]
static ALLOCATOR: guard::CappedAllocator = guard::CappedAllocator;

#[derive(Parser)]
#[command(about = "Mutation fuzzing of every file the project reads")]
struct Args {
    /// Readers to fuzz (default: all): idx, cifar, image, image-folder, pth, safetensors,
    /// burnpack, run-files, recipe, tar-gz.
    targets: Vec<String>,
    /// Seconds per reader.
    #[arg(long, conflicts_with = "inputs")]
    seconds: Option<u64>,
    /// Inputs per reader (default: 2,000 when no --seconds).
    #[arg(long)]
    inputs: Option<u64>,
    /// Seed of the mutations; a finding is replayed from it.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Readers fuzzed at once, each in its own process.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Where findings are written.
    #[arg(long, default_value = "fuzz/findings")]
    findings: PathBuf,
    /// A single allocation above this many MiB is a finding.
    #[arg(long, default_value_t = guard::DEFAULT_CAP >> 20)]
    cap_mib: usize,
    /// Run one reader in this process (what each child process is given).
    #[arg(long, hide = true)]
    child: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let names: Vec<String> = if args.targets.is_empty() {
        TARGETS.iter().map(|t| t.name.to_string()).collect()
    } else {
        args.targets.clone()
    };
    if let Some(unknown) = names.iter().find(|name| target(name).is_none()) {
        let known: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
        eprintln!(
            "fuzz: no reader named '{unknown}' (known: {})",
            known.join(", ")
        );
        return ExitCode::from(2);
    }
    if args.child {
        return run_one(&args, &names[0]);
    }
    println!(
        "| reader | inputs | accepted | refused | different answers | corpus | slowest input | \
         panics | hangs | allocations > {} MiB | time |",
        args.cap_mib
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut clean = true;
    for chunk in names.chunks(args.jobs.max(1)) {
        let children: Vec<_> = chunk
            .iter()
            .map(|name| {
                let mut command = Command::new(std::env::current_exe().expect("this program"));
                command.arg(name).arg("--child");
                command.args(["--seed", &args.seed.to_string()]);
                command.args(["--cap-mib", &args.cap_mib.to_string()]);
                command.arg("--findings").arg(&args.findings);
                match (args.seconds, args.inputs) {
                    (Some(seconds), _) => command.args(["--seconds", &seconds.to_string()]),
                    (None, Some(inputs)) => command.args(["--inputs", &inputs.to_string()]),
                    (None, None) => &mut command,
                };
                let child = command
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn();
                (name, child)
            })
            .collect();
        for (name, child) in children {
            match child.and_then(std::process::Child::wait_with_output) {
                Ok(output) if output.status.success() || output.status.code() == Some(1) => {
                    print!("{}", String::from_utf8_lossy(&output.stdout));
                    eprint!("{}", String::from_utf8_lossy(&output.stderr));
                    clean &= output.status.success();
                }
                Ok(output) => {
                    clean = false;
                    eprint!("{}", String::from_utf8_lossy(&output.stderr));
                    println!(
                        "| {name} | the process ended with {} (a hang or a crash: see above) |",
                        output.status
                    );
                }
                Err(e) => {
                    clean = false;
                    println!("| {name} | could not start: {e} |");
                }
            }
        }
    }
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_one(args: &Args, name: &str) -> ExitCode {
    let target = target(name).expect("checked by the caller");
    guard::set_cap(args.cap_mib << 20);
    let budget = match (args.seconds, args.inputs) {
        (Some(seconds), _) => Budget::Time(Duration::from_secs(seconds)),
        (None, inputs) => Budget::Inputs(inputs.unwrap_or(2000)),
    };
    let report = match fuzz(target, budget, args.seed) {
        Ok(report) => report,
        Err(problem) => {
            eprintln!("{problem}");
            return ExitCode::from(2);
        }
    };
    let count = |kind| {
        report
            .findings
            .iter()
            .filter(|finding| finding.kind == kind)
            .count()
    };
    println!(
        "| {} | {} | {} | {} | {} | {} | {:.0} ms | {} | 0 | {} | {:.0} s |",
        report.target,
        report.inputs,
        report.accepted,
        report.refused,
        report.answers,
        report.corpus,
        report.slowest.as_secs_f64() * 1e3,
        count(fuzz::FindingKind::Panic),
        count(fuzz::FindingKind::OversizeAllocation),
        report.elapsed.as_secs_f64()
    );
    for (index, finding) in report.findings.iter().enumerate() {
        let path = args
            .findings
            .join(format!("{}-{}-{index}.bin", report.target, args.seed));
        let saved = std::fs::create_dir_all(&args.findings)
            .and_then(|()| std::fs::write(&path, &finding.input));
        eprintln!(
            "{}: {:?}: {} (input {})",
            report.target,
            finding.kind,
            finding.message,
            match saved {
                Ok(()) => path.display().to_string(),
                Err(e) => format!("not saved: {e}"),
            }
        );
    }
    if report.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
