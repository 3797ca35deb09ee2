//! A process's memory and CPU use, read from /proc (Linux), for the benchmarks' reports. `pid`
//! is a process id or `self`; an unreadable process reads as zero.

/// How many clock ticks /proc counts per second (USER_HZ, 100 on Linux).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// Resident memory in bytes.
pub fn resident_bytes(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// User plus system CPU ticks so far.
pub fn cpu_ticks(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // The command name (field 2) may hold spaces: count fields after its `)`.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user = fields.get(11)?.parse::<u64>().ok()?;
            let system = fields.get(12)?.parse::<u64>().ok()?;
            Some(user + system)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_spends_cpu() {
        assert!(resident_bytes("self") > 0);
        let before = cpu_ticks("self");
        let started = std::time::Instant::now();
        let mut spin = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(100) {
            spin = spin.wrapping_add(1);
        }
        assert!(spin > 0);
        assert!(cpu_ticks("self") > before);
        assert_eq!(resident_bytes("no-such-process"), 0);
    }
}
