//! CPU time and resident memory of a process, read from `/proc`.

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// User + system CPU seconds so far.
    pub cpu_secs: f64,
    /// User CPU seconds so far.
    pub user_secs: f64,
    /// System (kernel) CPU seconds so far.
    pub system_secs: f64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

/// Reads `/proc/<pid>` (`self` for this process); zeros when unreadable.
pub fn sample(pid: Option<u32>) -> Sample {
    let dir = pid.map_or_else(|| "/proc/self".to_owned(), |p| format!("/proc/{p}"));
    let stat = std::fs::read_to_string(format!("{dir}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let (user, system) = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect::<Vec<_>>())
        .and_then(|f| {
            Some((
                f.get(11)?.parse::<u64>().ok()?,
                f.get(12)?.parse::<u64>().ok()?,
            ))
        })
        .unwrap_or((0, 0));
    let (user_secs, system_secs) = (user as f64 / 100.0, system as f64 / 100.0);
    let status = std::fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
    let rss_bytes = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    Sample {
        cpu_secs: user_secs + system_secs,
        user_secs,
        system_secs,
        rss_bytes,
    }
}
