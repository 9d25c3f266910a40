//! Run folders: one run to a folder, never replaced by a re-typed command. A new run picks a
//! fresh folder by default (`runs/<model>`, then `runs/<model>-2`, …, as Lightning numbers its
//! versions), refuses a folder that holds a run unless told to overwrite it, and holds a lock
//! file while it trains so that a second process cannot write into the same folder.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file a run writes first.
const CONFIG: &str = "config.json";
/// The files a run writes once it has trained: a folder with its configuration but none of
/// these holds a run that failed to start (a missing dataset, a backend without a driver),
/// which a new run may take without `--overwrite`.
const TRAINED: [&str; 4] = ["checkpoint.json", "metrics.csv", "last.bpk", "best.bpk"];
/// The lock file, holding the training process's id.
const LOCK: &str = "run.lock";

/// Whether `out` holds a run that trained (finished, stopped or in progress).
pub fn holds_run(out: &Path) -> bool {
    out.join(CONFIG).is_file() && TRAINED.iter().any(|name| out.join(name).is_file())
}

/// `base` with `-2`, `-3`, … appended to its name for the `n`-th folder of a series.
fn numbered(base: &Path, n: usize) -> PathBuf {
    if n == 1 {
        return base.to_path_buf();
    }
    let mut name = base.file_name().unwrap_or_default().to_os_string();
    name.push(format!("-{n}"));
    base.with_file_name(name)
}

/// The first of `base`, `base-2`, `base-3`, … that holds no run: where a new run goes when no
/// `--out` is given.
pub fn fresh(base: &Path) -> PathBuf {
    (1..)
        .map(|n| numbered(base, n))
        .find(|out| !holds_run(out))
        .expect("some numbered folder holds no run")
}

/// The last of `base`, `base-2`, … that holds a run: what `--resume` without `--out` continues.
pub fn latest(base: &Path) -> Option<PathBuf> {
    (1..)
        .map(|n| numbered(base, n))
        .take_while(|out| holds_run(out))
        .last()
}

/// The files a run writes, removed by `--overwrite` before a new run starts in its folder.
pub(crate) fn clear(out: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(out)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let written_by_a_run = matches!(
            name,
            "config.json"
                | "checkpoint.json"
                | "metrics.csv"
                | "curves.png"
                | "last.bpk"
                | "best.bpk"
                | "eval.json"
                | "eval.png"
                | "manifest.json"
        ) || (name.starts_with("checkpoint-") && name.ends_with(".bpk"));
        if written_by_a_run {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Why a folder could not be locked.
#[derive(Debug)]
pub struct Locked(pub String);

/// The lock of a run folder, released (its file removed) when dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    /// Takes `out`'s lock for this process. A lock left by a process that no longer runs (killed,
    /// or the machine restarted) is stale and taken over.
    pub fn acquire(out: &Path) -> Result<Self, Locked> {
        let path = out.join(LOCK);
        for _ in 0..2 {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    file.write_all(std::process::id().to_string().as_bytes())
                        .map_err(|e| Locked(format!("{}: {e}", path.display())))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&path).unwrap_or_default();
                    match owner.trim().parse::<u32>() {
                        Ok(pid) if process_runs(pid) => {
                            return Err(Locked(format!(
                                "{} is being trained by process {pid} ({}); wait for it to end \
                                 or choose another --out",
                                out.display(),
                                path.display()
                            )));
                        }
                        _ => {
                            std::fs::remove_file(&path)
                                .map_err(|e| Locked(format!("{}: {e}", path.display())))?;
                        }
                    }
                }
                Err(e) => return Err(Locked(format!("{}: {e}", path.display()))),
            }
        }
        Err(Locked(format!(
            "{}: another process took the lock at the same moment",
            path.display()
        )))
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether process `pid` is alive. Where that cannot be asked (no `/proc`), a lock is taken as
/// held: refusing is the safe side.
fn process_runs(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("run-folder-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn new_runs_take_the_first_numbered_folder_without_a_run() {
        let dir = scratch("fresh");
        let base = dir.join("lenet5");
        assert_eq!(fresh(&base), base);
        assert_eq!(latest(&base), None);
        std::fs::create_dir_all(&base).unwrap();
        std::fs::write(base.join("curves.png"), b"not a run").unwrap();
        assert_eq!(
            fresh(&base),
            base,
            "a folder without config.json holds no run"
        );
        std::fs::write(base.join(CONFIG), b"{}").unwrap();
        assert_eq!(
            fresh(&base),
            base,
            "a run that failed before training holds nothing to keep"
        );
        std::fs::write(base.join("checkpoint.json"), b"{}").unwrap();
        assert_eq!(fresh(&base), dir.join("lenet5-2"));
        std::fs::create_dir_all(dir.join("lenet5-2")).unwrap();
        std::fs::write(dir.join("lenet5-2").join(CONFIG), b"{}").unwrap();
        std::fs::write(dir.join("lenet5-2").join("metrics.csv"), b"").unwrap();
        assert_eq!(fresh(&base), dir.join("lenet5-3"));
        assert_eq!(latest(&base), Some(dir.join("lenet5-2")));
    }

    #[test]
    fn a_lock_keeps_out_a_second_owner_and_a_stale_one_is_taken_over() {
        let dir = scratch("lock");
        let lock = RunLock::acquire(&dir).unwrap();
        assert!(dir.join(LOCK).is_file());
        let error = RunLock::acquire(&dir).unwrap_err().0;
        let own = format!("is being trained by process {}", std::process::id());
        assert!(error.contains(&own), "{error}");
        drop(lock);
        assert!(!dir.join(LOCK).exists(), "released on drop");

        // PID 1 always runs on Linux: a lock it held is live.
        std::fs::write(dir.join(LOCK), b"1").unwrap();
        let error = RunLock::acquire(&dir).unwrap_err().0;
        assert!(
            error.contains("is being trained by process 1") && error.contains("--out"),
            "{error}"
        );
        // A process id beyond the kernel's limit is stale.
        std::fs::write(dir.join(LOCK), b"4294967295").unwrap();
        let taken = RunLock::acquire(&dir).unwrap();
        let owner = std::fs::read_to_string(dir.join(LOCK)).unwrap();
        assert_eq!(owner, std::process::id().to_string());
        drop(taken);
    }

    #[test]
    fn clearing_removes_only_what_a_run_writes() {
        let dir = scratch("clear");
        for name in [
            "config.json",
            "best.bpk",
            "checkpoint-e1-s0.bpk",
            "notes.txt",
        ] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        clear(&dir).unwrap();
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["notes.txt"]);
    }
}
