#!/usr/bin/env bash
# Two builds of raft-io side by side: the working tree ("raft-io 0.8")
# against revision REV ("base"), interleaved in one process under the
# comparison's rules, with raft-io 1.0 as the third subject.
#
#   benches/compare/ab.sh REV [--reps N] [--only W1,W2] [--scale F]
#
# The two builds differ only in their code, so the "base" row's ratio is
# the change's effect. The binary stays in target/ab: `--profile` runs the
# working tree's raft-io alone and `--alone raft-rs` the base, for
# callgrind to count each build's instructions. Two things that are not
# the code would move the ratio, and both are held still here
# (docs/BENCHMARKS.md, "Measuring a change"):
#  * where the branches of the hot loops fall: an Intel CPU with the
#    microcode fix for the jump-on-a-32-byte-boundary erratum (the VM this
#    script was written on) runs a loop whose jump straddles such a
#    boundary slower, so two copies of the same code at different
#    addresses differed by up to 10%. Every crate is built with branches
#    kept within 32-byte boundaries (on other CPUs this only pads);
#  * the heap the previous subject left: glibc gives freed memory back to
#    the system and faults it in again, more or less depending on what ran
#    before. The heap thresholds are fixed so that it keeps it.
# Both apply to all three subjects alike. The table in BENCHMARKS.md is
# still measured without them, as a user builds and runs.
set -euo pipefail
rev=${1:?usage: ab.sh REV [compare arguments]}
shift
root=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=$(mktemp -d "${TMPDIR:-/tmp}/raft-io-ab.XXXXXX")
cleanup() {
    git -C "$root" worktree remove --force "$work/base" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

git -C "$root" worktree add -q --detach "$work/base" "$rev"
# The same crate under another name, so both builds link into one binary.
sed -i '0,/^name = "raft-io"$/s//name = "raft-io-base"/' "$work/base/Cargo.toml"

mkdir "$work/ab"
cp -r "$root/benches/compare/Cargo.toml" "$root/benches/compare/Cargo.lock" "$root/benches/compare/src" "$work/ab/"
sed -i "s|^raft-io = { path = \"../..\"|raft-io = { path = \"$root\"|" "$work/ab/Cargo.toml"
sed -i "/^raft-io = /a raft-io-base = { path = \"$work/base\", features = [\"framing\"] }" "$work/ab/Cargo.toml"
# The base subject: raft-io's own, against the other build.
sed -e 's/raft_io::/raft_io_base::/g' -e 's/\bOurs\b/Base/g' -e 's/"raft-io 0.8"/"base"/' \
    "$root/benches/compare/src/ours.rs" > "$work/ab/src/base.rs"

export CARGO_TARGET_DIR="$root/benches/compare/target/ab"
export RUSTFLAGS="-C llvm-args=-x86-branches-within-32B-boundaries"
cargo build -q --release --features base --manifest-path "$work/ab/Cargo.toml"
export GLIBC_TUNABLES=glibc.malloc.trim_threshold=4000000000:glibc.malloc.mmap_threshold=33554432
"$CARGO_TARGET_DIR/release/raft-io-compare" "$@"
