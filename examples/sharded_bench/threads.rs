//! CPU time by kind of thread (Linux, `/proc/self/task/*`): the runtime's
//! drivers, its TCP transports' threads, the client threads, and the rest.
//! A thread that ended is no longer listed, so snapshots are taken while
//! the threads measured are alive.
//!
//! Each thread's time on a CPU comes from its `schedstat` (nanoseconds,
//! exact). Its `stat` splits user and system time only by sampling at the
//! timer tick, which misses threads that run in short bursts (the 64
//! clients showed no time at all there over 2 s, 0.4 s in `schedstat`), so
//! it gives the kernel's share of the drivers' time and of all, and the
//! time of a thread only where `schedstat` is missing.

/// CPU seconds of the live threads, by kind, and the ticks that split
/// them between user and system time.
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
    /// Sampled seconds (`stat`), every thread's: all, and in the kernel.
    sampled: Split,
    /// The same, the drivers' alone.
    drivers_sampled: Split,
}

/// Sampled user plus system seconds, and system seconds.
#[derive(Clone, Copy, Default)]
struct Split {
    all: f64,
    system: f64,
}

impl Split {
    fn since(self, before: Split) -> Split {
        Split { all: self.all - before.all, system: self.system - before.system }
    }

    fn add(&mut self, all: f64, system: f64) {
        self.all += all;
        self.system += system;
    }

    /// The system share in percent (0 with nothing sampled).
    fn system_pct(self) -> f64 {
        if self.all > 0.0 { 100.0 * self.system / self.all } else { 0.0 }
    }
}

impl ThreadCpu {
    /// What each kind spent since `before`.
    pub fn since(&self, before: &ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            drivers: self.drivers - before.drivers,
            transports: self.transports - before.transports,
            clients: self.clients - before.clients,
            other: self.other - before.other,
            sampled: self.sampled.since(before.sampled),
            drivers_sampled: self.drivers_sampled.since(before.drivers_sampled),
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
            self.drivers_sampled.system_pct(),
            pct(self.transports),
            pct(self.clients),
            pct(self.other),
            self.sampled.system_pct()
        )
    }
}

/// The live threads' CPU time so far, by kind (`None` off Linux).
pub fn snapshot() -> Option<ThreadCpu> {
    let mut cpu = ThreadCpu::default();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        // A thread may end between the listing and the read: skipped.
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        let Some((name, sampled, system)) = parse(&stat) else { continue };
        let on_cpu = std::fs::read_to_string(task.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(sampled, |ns| ns as f64 / 1e9);
        cpu.sampled.add(sampled, system);
        let kind = if name.starts_with("raft-io-multi") {
            cpu.drivers_sampled.add(sampled, system);
            &mut cpu.drivers
        } else if name.starts_with("raft-io-tcp") {
            &mut cpu.transports
        } else if name.starts_with("client-") {
            &mut cpu.clients
        } else {
            &mut cpu.other
        };
        *kind += on_cpu;
    }
    Some(cpu)
}

/// A task's (or the process's) name, CPU seconds and of them system
/// seconds, from its `stat` line: `pid (name) state ...`, utime and stime
/// the 14th and 15th fields, in ticks of 1/100 s.
pub fn parse(stat: &str) -> Option<(&str, f64, f64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, (utime + stime) as f64 / 100.0, stime as f64 / 100.0))
}
