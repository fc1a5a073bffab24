//! The shellcheck gate: every shell script under `tuning/` and `scripts/` is clean.

use std::io::ErrorKind;

use super::*;

fn shell_scripts(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with('.') || name == "__pycache__" || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            shell_scripts(&path, out);
        } else if name.ends_with(".sh") {
            out.push(path.strip_prefix(repo()).expect("in repo").to_path_buf());
        }
    }
}

#[test]
fn every_shell_script_is_shellcheck_clean() {
    let mut scripts = Vec::new();
    shell_scripts(&repo().join("tuning"), &mut scripts);
    shell_scripts(&repo().join("scripts"), &mut scripts);
    scripts.sort();
    for must in ["tuning/check.sh", "tuning/apply.sh", "tuning/restore.sh"] {
        assert!(
            scripts.iter().any(|s| s == Path::new(must)),
            "{must} not found"
        );
    }
    let out = match Command::new("shellcheck")
        .arg("--external-sources")
        .args(&scripts)
        .current_dir(repo())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => panic!(
            "shellcheck is not installed: run `make tools` (it installs the Debian package shellcheck)"
        ),
        Err(e) => panic!("cannot run shellcheck: {e}"),
    };
    assert!(
        out.status.success(),
        "shellcheck found problems in {scripts:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
