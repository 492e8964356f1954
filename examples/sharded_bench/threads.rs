//! CPU time by kind of thread (Linux: `/proc/self/task/*/stat`): the
//! runtime's drivers, its TCP transports' threads, the client threads, and
//! the rest. A thread that ended is no longer listed, so snapshots are
//! taken while the threads measured are alive.

/// CPU seconds (user and system) of the live threads, by kind.
#[derive(Clone, Copy, Default)]
pub struct ThreadCpu {
    /// `raft-io-multi-*`: the many-groups drivers.
    pub drivers: f64,
    /// `raft-io-tcp-*`: the TCP transports' readers, writers and acceptors.
    pub transports: f64,
    /// `client-*`: the benchmark's clients.
    pub clients: f64,
    /// Every other thread.
    pub other: f64,
    /// Of all the above, the time in the kernel (system time).
    pub system: f64,
    /// Of the drivers' time, the time in the kernel.
    pub drivers_system: f64,
}

impl ThreadCpu {
    /// What each kind spent since `before`.
    pub fn since(&self, before: &ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            drivers: self.drivers - before.drivers,
            transports: self.transports - before.transports,
            clients: self.clients - before.clients,
            other: self.other - before.other,
            system: self.system - before.system,
            drivers_system: self.drivers_system - before.drivers_system,
        }
    }

    /// Each kind's share of the total, as `drivers 72 %, ...`, then the
    /// kernel's share (of the drivers' time, and of all).
    pub fn shares(&self) -> String {
        let total = self.drivers + self.transports + self.clients + self.other;
        if total <= 0.0 {
            return "-".to_owned();
        }
        let pct = |x: f64| 100.0 * x / total;
        format!(
            "drivers {:.0} % ({:.0} % in the kernel), transports {:.0} %, clients {:.0} %, other {:.0} %; in the kernel {:.0} %",
            pct(self.drivers),
            if self.drivers > 0.0 { 100.0 * self.drivers_system / self.drivers } else { 0.0 },
            pct(self.transports),
            pct(self.clients),
            pct(self.other),
            pct(self.system)
        )
    }
}

/// The live threads' CPU time so far, by kind (`None` off Linux).
pub fn snapshot() -> Option<ThreadCpu> {
    let mut cpu = ThreadCpu::default();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        // A thread may end between the listing and the read: skipped.
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let Some((name, seconds, system)) = parse(&stat) else { continue };
        cpu.system += system;
        if name.starts_with("raft-io-multi") {
            cpu.drivers_system += system;
        }
        let kind = if name.starts_with("raft-io-multi") {
            &mut cpu.drivers
        } else if name.starts_with("raft-io-tcp") {
            &mut cpu.transports
        } else if name.starts_with("client-") {
            &mut cpu.clients
        } else {
            &mut cpu.other
        };
        *kind += seconds;
    }
    Some(cpu)
}

/// A task's name, CPU seconds and of them system seconds, from its `stat`
/// line: `pid (name) state ...`, utime and stime the 14th and 15th fields,
/// in ticks of 1/100 s.
fn parse(stat: &str) -> Option<(&str, f64, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, (utime + stime) as f64 / 100.0, stime as f64 / 100.0))
}
