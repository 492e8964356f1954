//! What the node examples do when their runtime stops under them (a
//! storage failure halts it, a panicking state machine stops it): they
//! exit with a failure status, saying why, so that a supervisor (systemd,
//! Kubernetes) restarts them. Left running, the client server would only
//! answer every request with an error.

use std::time::Duration;

/// Watches, on a thread of its own, for `stopped` to give a reason; then
/// logs it under `name` and `id` and exits the process with status 1.
pub fn exit_when_stopped(
    name: &'static str,
    id: u64,
    stopped: impl Fn() -> Option<String> + Send + 'static,
) -> Result<(), String> {
    std::thread::Builder::new()
        .name(format!("{name}-watch"))
        .spawn(move || {
            loop {
                if let Some(reason) = stopped() {
                    eprintln!("{name} {id}: the runtime stopped ({reason}); exiting");
                    std::process::exit(1);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
        .map(drop)
        .map_err(|e| format!("start the watcher: {e}"))
}
