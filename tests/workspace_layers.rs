//! The workspace's shape as a gate: the layering of its crates, where `unsafe` may live, and
//! the size of its source files (docs/ARCHITECTURE.md draws the same picture).
//!
//! - A crate depends only on crates below it: core, report, uring (the shard's io_uring
//!   driver) and fix (the FIX 4.4 codec) at the bottom; wire, journal and md (market data)
//!   on core; config on core and journal; engine and load on those (never on each other);
//!   the `veloz` binary on all of them. Offline tools (load, the audit in the binary) never
//!   reach the engine runtime through a lower crate.
//! - Every crate root forbids `unsafe_code`, except veloz-journal, veloz-wire, veloz-md and
//!   veloz-uring, which deny it and allow it in exactly one module each (the mmap backend,
//!   the generated FlatBuffers code of each protocol, the io_uring FFI).
//! - No hand-written source file is over 800 lines (generated code is exempt).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Which workspace crates each crate may depend on (normal dependencies).
const ALLOWED: [(&str, &[&str]); 12] = [
    ("veloz-core", &[]),
    ("veloz-fix", &[]),
    ("veloz-uring", &[]),
    ("veloz-md", &["veloz-core"]),
    ("veloz-report", &[]),
    ("veloz-wire", &["veloz-core"]),
    ("veloz-journal", &["veloz-core"]),
    ("veloz-config", &["veloz-core", "veloz-journal"]),
    (
        "veloz-replica",
        &["veloz-core", "veloz-journal", "veloz-config"],
    ),
    (
        "veloz-engine",
        &[
            "veloz-core",
            "veloz-wire",
            "veloz-journal",
            "veloz-config",
            "veloz-report",
            "veloz-md",
            "veloz-uring",
            "veloz-fix",
            "veloz-replica",
        ],
    ),
    (
        "veloz-load",
        &[
            "veloz-core",
            "veloz-wire",
            "veloz-config",
            "veloz-report",
            "veloz-md",
            "veloz-fix",
        ],
    ),
    (
        "veloz",
        &[
            "veloz-core",
            "veloz-wire",
            "veloz-journal",
            "veloz-config",
            "veloz-report",
            "veloz-engine",
            "veloz-load",
            "veloz-md",
            "veloz-fix",
            "veloz-replica",
        ],
    ),
];

fn manifest(name: &str) -> PathBuf {
    if name == "veloz" {
        repo().join("Cargo.toml")
    } else {
        repo().join("crates").join(name).join("Cargo.toml")
    }
}

/// The `veloz-*` names in a manifest's `[dependencies]` table.
fn workspace_deps(path: &Path) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let deps = doc
        .get("dependencies")
        .and_then(|d| d.as_table())
        .cloned()
        .unwrap_or_default();
    deps.keys()
        .filter(|k| k.starts_with("veloz-"))
        .cloned()
        .collect()
}

#[test]
fn every_crate_depends_only_on_crates_below_it() {
    let members: Vec<String> = fs::read_dir(repo().join("crates"))
        .expect("crates/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.into_iter().collect();
    for member in &members {
        assert!(
            allowed.contains_key(member.as_str()),
            "crates/{member} is not placed in the layering of tests/workspace_layers.rs \
             (and docs/ARCHITECTURE.md): say which crates it may depend on"
        );
    }
    for (name, ok) in &allowed {
        for dep in workspace_deps(&manifest(name)) {
            assert!(
                ok.contains(&dep.as_str()),
                "{name} depends on {dep}, which is not below it (allowed: {ok:?})"
            );
        }
    }
}

/// Every `.rs` file under `dir`, recursively, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn is_generated(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "generated")
}

#[test]
fn unsafe_lives_in_one_module_per_crate_at_most() {
    for (name, _) in ALLOWED {
        let src = manifest(name).parent().expect("crate dir").join("src");
        let root = src.join("lib.rs");
        let text = fs::read_to_string(&root).expect("lib.rs");
        let (attr, allowed_in) = match name {
            "veloz-journal" => ("#![deny(unsafe_code)]", Some("backend/mmap.rs")),
            "veloz-wire" => ("#![deny(unsafe_code)]", Some("generated/")),
            "veloz-md" => ("#![deny(unsafe_code)]", Some("generated/")),
            "veloz-uring" => ("#![deny(unsafe_code)]", Some("sys.rs")),
            _ => ("#![forbid(unsafe_code)]", None),
        };
        assert!(
            text.contains(attr),
            "{}: the crate root must say {attr}",
            root.display()
        );
        for file in rust_files(&src) {
            let rel = file.strip_prefix(&src).expect("under src");
            let body = fs::read_to_string(&file).expect("read");
            let has_unsafe = body.lines().any(|l| {
                let code = l.split("//").next().unwrap_or("");
                code.contains("unsafe ") || code.contains("unsafe{")
            });
            let may = allowed_in.is_some_and(|a| rel.to_string_lossy().starts_with(a));
            assert!(
                !has_unsafe || may,
                "{}: unsafe code outside the one module allowed for {name}",
                file.display()
            );
            if file != root {
                assert!(
                    !body.contains("#![forbid(unsafe_code)]"),
                    "{}: forbid(unsafe_code) belongs once, in the crate root",
                    file.display()
                );
            }
        }
    }
}

#[test]
fn no_hand_written_source_file_is_over_800_lines() {
    let mut roots = vec![
        repo().join("src"),
        repo().join("benches"),
        repo().join("tests"),
    ];
    for (name, _) in ALLOWED {
        if name != "veloz" {
            roots.push(repo().join("crates").join(name));
        }
    }
    let mut long = Vec::new();
    for root in roots {
        for file in rust_files(&root) {
            if is_generated(&file) {
                continue;
            }
            let lines = fs::read_to_string(&file).expect("read").lines().count();
            if lines > 800 {
                long.push(format!("{} ({lines} lines)", file.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these along their ideas (800 lines at most):\n{}",
        long.join("\n")
    );
}
