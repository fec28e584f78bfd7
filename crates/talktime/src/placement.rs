//! Places the ledger's thread and the SQLite writer connection's thread on one CPU
//! (`[database] writer_cpu`). Every write statement is a hand-off from one to the other and
//! back; on one CPU a hand-off is a context switch, across two it wakes the other CPU, which
//! on a virtual machine costs far more (docs/PERFORMANCE.md).

use std::path::Path;

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error("CPU {cpu} is not one this process may run on (it may run on {allowed})")]
    NotAllowed { cpu: usize, allowed: String },
    #[error("cannot read this process's CPUs: {0}")]
    Read(nix::Error),
    #[error("cannot place a thread on CPU {cpu}: {source}")]
    Place { cpu: usize, source: nix::Error },
}

/// The CPUs this process may run on, in order.
pub fn allowed_cpus() -> Result<Vec<usize>, PlacementError> {
    let allowed = sched_getaffinity(Pid::from_raw(0)).map_err(PlacementError::Read)?;
    Ok(cpus_of(&allowed))
}

/// The set of `cpu` alone, if this process may run there.
pub fn one_cpu(cpu: usize) -> Result<CpuSet, PlacementError> {
    let allowed = sched_getaffinity(Pid::from_raw(0)).map_err(PlacementError::Read)?;
    if !allowed.is_set(cpu).unwrap_or(false) {
        return Err(PlacementError::NotAllowed {
            cpu,
            allowed: describe(&allowed),
        });
    }
    let mut set = CpuSet::new();
    set.set(cpu)
        .map_err(|source| PlacementError::Place { cpu, source })?;
    Ok(set)
}

/// Moves the calling thread to `cpu`.
pub fn place_this_thread(cpu: usize) -> Result<(), PlacementError> {
    let set = one_cpu(cpu)?;
    sched_setaffinity(Pid::from_raw(0), &set)
        .map_err(|source| PlacementError::Place { cpu, source })
}

/// Moves every thread of this process named `name` to `cpu`; how many there were.
pub fn place_threads_named(name: &str, cpu: usize) -> Result<usize, PlacementError> {
    let set = one_cpu(cpu)?;
    let mut placed = 0;
    for thread in threads_named(Path::new("/proc/self/task"), name) {
        sched_setaffinity(Pid::from_raw(thread), &set)
            .map_err(|source| PlacementError::Place { cpu, source })?;
        placed += 1;
    }
    Ok(placed)
}

/// The ids of the threads under `tasks` (a `/proc/<pid>/task` directory) named `name`.
fn threads_named(tasks: &Path, name: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir(tasks) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
        })
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect()
}

fn cpus_of(set: &CpuSet) -> Vec<usize> {
    (0..CpuSet::count())
        .filter(|cpu| set.is_set(*cpu).unwrap_or(false))
        .collect()
}

/// `0,1,3`: the CPUs of `set`.
fn describe(set: &CpuSet) -> String {
    let cpus: Vec<String> = cpus_of(set).iter().map(ToString::to_string).collect();
    cpus.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_this_process_may_not_use_is_refused_by_name() {
        let error = one_cpu(CpuSet::count() - 1).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("is not one this process may run on"),
            "{error}"
        );
    }

    #[test]
    fn threads_are_found_by_their_name() {
        let (ready, wait) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let named = std::thread::Builder::new()
            .name("placement-test".into())
            .spawn(move || {
                ready.send(()).unwrap();
                let _ = stopped.recv();
            })
            .unwrap();
        wait.recv().unwrap();
        let found = threads_named(Path::new("/proc/self/task"), "placement-test");
        assert_eq!(found.len(), 1);
        assert!(threads_named(Path::new("/proc/self/task"), "placement-tes").is_empty());
        stop.send(()).unwrap();
        named.join().unwrap();
    }
}
