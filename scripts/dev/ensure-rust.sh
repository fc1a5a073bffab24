#!/usr/bin/env bash
# Check the Rust toolchain `make` needs (cargo, rustfmt, clippy); add missing rustup
# components; explain clearly when something cannot be had.
set -euo pipefail
if ! command -v cargo >/dev/null 2>&1; then
  echo "ensure-rust: cargo not found. Install Rust with rustup (https://rustup.rs), then run make again." >&2
  exit 1
fi
for comp in rustfmt clippy; do
  bin=$([ "$comp" = clippy ] && echo cargo-clippy || echo rustfmt)
  if ! command -v "$bin" >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1; then
      echo "ensure-rust: adding rustup component $comp" >&2
      rustup component add "$comp" >&2 || { echo "ensure-rust: could not add $comp with rustup" >&2; exit 1; }
    else
      echo "ensure-rust: $bin not found and rustup is missing; install the $comp component of your toolchain" >&2
      exit 1
    fi
  fi
done
