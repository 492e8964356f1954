//! The example binary a process test runs (`tests/kv_node_processes.rs`,
//! `tests/sharded_node_processes.rs`): the one `cargo test` builds next to
//! the test, brought up to date with `cargo build --example <name>` and the
//! features the test was built with.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The features this test was built with: `None` for all of them.
fn features() -> Option<String> {
    let all = [
        ("net", cfg!(feature = "net")),
        ("persistence", cfg!(feature = "persistence")),
        ("framing", cfg!(feature = "framing")),
        ("sim", cfg!(feature = "sim")),
        ("tracing", cfg!(feature = "tracing")),
        ("metrics", cfg!(feature = "metrics")),
        ("tls", cfg!(feature = "tls")),
    ];
    if all.iter().all(|(_, on)| *on) {
        return None;
    }
    Some(all.iter().filter(|(_, on)| *on).map(|(f, _)| *f).collect::<Vec<_>>().join(","))
}

/// `target/<profile>/examples/<name>`, brought up to date with
/// `cargo build --example <name>` (same features, same target directory
/// and profile: a no-op after `cargo test`, which builds it). If that build
/// cannot run (no cargo at hand) an existing binary is used as it is.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("examples").join(name);
    let target = profile_dir.parent().expect("target dir");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    // Without the variables cargo set for this test's run: a build script
    // that watches one (ring watches CARGO_MANIFEST_DIR) would otherwise be
    // rerun here, and again by the next `cargo test`.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let set_for_tests = ["CARGO_PKG_", "CARGO_BIN_EXE_"].iter().any(|p| name.starts_with(p))
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&name.as_str());
        if set_for_tests {
            build.env_remove(&name);
        }
    }
    build.args(["build", "--example", name]);
    // The flags of the run that built this test, so nothing is rebuilt
    // (`--all-features` and the same list spelled out do not share builds).
    match features() {
        Some(list) => build.args(["--features", &list]),
        None => build.arg("--all-features"),
    };
    build.arg("--target-dir").arg(target);
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let built = build.current_dir(env!("CARGO_MANIFEST_DIR")).status().map(|s| s.success());
    match built {
        Ok(true) => {}
        _ if bin.exists() => eprintln!("cargo build --example {name} failed ({built:?}); using {}", bin.display()),
        _ => panic!("cargo build --example {name} failed ({built:?}) and {} is missing", bin.display()),
    }
    assert!(bin.exists(), "{} missing after the build", bin.display());
    bin
}
