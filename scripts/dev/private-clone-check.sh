#!/usr/bin/env bash
# Run the tests that start scripts as another user (tuning, operations) from a clone inside a
# mode-0700 folder, as a user cloning into their home directory would: a test that relied on
# other users being able to enter the checkout fails here instead of on their machine.
#
# Clones the committed HEAD of this repository (uncommitted changes are not in the clone).
# Builds into this checkout's target/ so registry crates already built are reused; the
# clone's own crates build apart (their paths differ, so do their artifact hashes).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
private=$(mktemp -d "${TMPDIR:-/tmp}/veloz-private.XXXXXX")
trap 'rm -rf "$private"' EXIT
chmod 0700 "$private"
git clone --quiet --no-hardlinks "$repo" "$private/veloz"
echo "private-clone-check: testing a clone in $private (mode $(stat -c %a "$private"))"
cd "$private/veloz"
CARGO_TARGET_DIR="$repo/target" cargo test --locked --test tuning_scripts --test ops_scripts
