//! The host tuning scripts (`tuning/check.sh`, `apply.sh`, `restore.sh`) and the shellcheck
//! gate over every shell script of the project.
//!
//! The scripts read and write /sys, /proc and /etc through `VELOZ_SYSROOT`. Each test copies a
//! fake host from `tests/fixtures/tuning/` (`tuned/`: a host tuned for shard cores 2-3;
//! `untuned/`: a stock 4-CPU, 2-node host) into a temporary directory, runs the scripts
//! against it with bash, and compares their output line for line and the tree byte for byte.
//! Nothing on the real host is read or changed. `veloz.toml` there names shard cores 2 and 3.
//!
//! Parts: this file is the harness (a fake host in a temporary directory, running a script,
//! comparing output and trees); `shellcheck` the gate over every shell script; `check` the
//! tests of `check.sh`; `apply` those of `apply.sh` and `restore.sh`.

mod apply;
mod check;
mod shellcheck;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The fixture config, as the scripts see it from the repository root.
const CONFIG: &str = "tests/fixtures/tuning/veloz.toml";

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("veloz-tuning-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy fixture file");
        }
    }
}

/// Every path under `root`, `root` included, parents before children.
fn walk_paths(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() {
            let mut children: Vec<PathBuf> = fs::read_dir(&out[i])
                .expect("read dir")
                .map(|e| e.expect("dir entry").path())
                .collect();
            children.sort();
            out.extend(children);
        }
        i += 1;
    }
    out
}

/// Every directory and file under a root, with file contents.
#[derive(Debug, PartialEq, Eq, Clone)]
enum Node {
    Dir,
    File(Vec<u8>),
}

type Snapshot = BTreeMap<String, Node>;

fn snapshot(root: &Path) -> Snapshot {
    fn walk(root: &Path, dir: &Path, out: &mut Snapshot) {
        for entry in fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                out.insert(rel, Node::Dir);
                walk(root, &path, out);
            } else {
                out.insert(rel, Node::File(fs::read(&path).expect("read file")));
            }
        }
    }
    let mut out = Snapshot::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

/// Paths whose presence or content differ between two snapshots.
fn changed(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect()
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The report line of one check item ("PASS item: ..."), which must be there once.
    fn item(&self, item: &str) -> &str {
        let found: Vec<&str> = self
            .stdout
            .lines()
            .filter(|l| {
                ["PASS ", "WARN ", "FAIL "].iter().any(|s| {
                    l.strip_prefix(s)
                        .is_some_and(|r| r.starts_with(&format!("{item}: ")))
                })
            })
            .collect();
        assert_eq!(found.len(), 1, "item {item:?} once in:\n{}", self.stdout);
        found[0]
    }
}

/// A fake host: a copy of a fixture tree in a temporary directory.
struct FakeHost {
    tmp: TempDir,
    root: PathBuf,
}

impl FakeHost {
    fn new(fixture: &str) -> FakeHost {
        let tmp = TempDir::new(fixture);
        let root = tmp.0.join("root");
        if fixture == "empty" {
            fs::create_dir_all(&root).expect("mkdir root");
        } else {
            copy_tree(&repo().join("tests/fixtures/tuning").join(fixture), &root);
        }
        FakeHost { tmp, root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    fn write(&self, rel: &str, content: &str) {
        let path = self.path(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, content).expect("write");
    }

    /// A file beside the root (not part of the fake host).
    fn outside(&self, name: &str, content: &str) -> String {
        let path = self.tmp.0.join(name);
        fs::write(&path, content).expect("write");
        path.to_string_lossy().into_owned()
    }

    fn snapshot(&self) -> Snapshot {
        snapshot(&self.root)
    }

    /// A copy of what the scripts read from the checkout (`tuning/` and the fixture config,
    /// at the same relative paths) under this host's temporary tree, readable by every user.
    /// Panics, naming the folder, when the temporary tree itself cannot be entered by others
    /// (`TMPDIR` pointing into a private folder): that is the runner's setting, and a test
    /// that silently ran from the checkout instead would hide the problem.
    fn public_checkout(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let top = self.tmp.0.join("checkout");
        if !top.exists() {
            copy_tree(&repo().join("tuning"), &top.join("tuning"));
            let config = top.join(CONFIG);
            fs::create_dir_all(config.parent().expect("config parent")).expect("mkdir");
            fs::copy(repo().join(CONFIG), &config).expect("copy fixture config");
        }
        // The temporary tree is ours: open it whatever the umask was.
        for entry in [self.tmp.0.clone()].into_iter().chain(walk_paths(&top)) {
            let mode = if entry.is_dir() { 0o755 } else { 0o644 };
            fs::set_permissions(&entry, fs::Permissions::from_mode(mode)).expect("chmod copy");
        }
        for dir in self.tmp.0.ancestors().skip(1) {
            let mode = fs::metadata(dir)
                .expect("stat temp dir")
                .permissions()
                .mode();
            assert!(
                mode & 0o001 != 0,
                "{} (mode {:o}) cannot be entered by other users, so the scripts cannot run as \
                 another user from under it: point TMPDIR at a world-traversable folder",
                dir.display(),
                mode & 0o777
            );
        }
        top
    }

    fn state(&self) -> String {
        format!("{}/var/lib/veloz-tuning/saved.tsv", self.root.display())
    }

    /// Run tuning/SCRIPT with bash against this root, with only the VELOZ_* variables given.
    fn run(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_as(&[], script, args, env)
    }

    /// `run` under a command prefix (such as setpriv to drop root).
    ///
    /// With a prefix the scripts run as another user, who may not be able to enter the
    /// checkout (a clone in root's 0700 home or in a `mktemp -d` folder): they then run from
    /// a world-readable copy of `tuning/` and the fixture config in this host's temporary
    /// tree (see [`FakeHost::public_checkout`]), never from the checkout itself.
    fn run_as(&self, prefix: &[&str], script: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let (mut cmd, top) = match prefix.split_first() {
            Some((first, rest)) => {
                let mut cmd = Command::new(first);
                cmd.args(rest).arg("bash");
                (cmd, self.public_checkout())
            }
            None => (Command::new("bash"), repo().to_path_buf()),
        };
        cmd.arg(top.join("tuning").join(script))
            .args(args)
            .current_dir(&top)
            .env("LC_ALL", "C");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("VELOZ_") {
                cmd.env_remove(key);
            }
        }
        cmd.env("VELOZ_SYSROOT", &self.root);
        for (key, value) in env {
            cmd.env(key, value);
        }
        let out = cmd.output().expect("run bash");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

fn assert_lines(actual: &str, expected: &str) {
    let a: Vec<&str> = actual.lines().collect();
    let e: Vec<&str> = expected.lines().collect();
    for (i, (a, e)) in a.iter().zip(&e).enumerate() {
        assert_eq!(a, e, "line {} differs; whole output:\n{actual}", i + 1);
    }
    assert_eq!(
        a.len(),
        e.len(),
        "line count differs; whole output:\n{actual}"
    );
}
