// Shared by the build scripts that embed files from npm packages (`#[path]`-included): `npm ci`
// of a package.json and its lock file into a directory of OUT_DIR, done again only when the
// lock file changes. Nothing installed this way is ever committed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Installs `manifest/package.json` (with its lock file) into `dir` and returns `dir`, unless
/// the same lock file was installed there already and every path of `expect` exists in it.
pub(crate) fn npm_ci(manifest: &Path, dir: &Path, expect: &[&str]) -> Result<PathBuf, String> {
    let lock = std::fs::read(manifest.join("package-lock.json"))
        .map_err(|e| format!("{}: {e}", manifest.join("package-lock.json").display()))?;
    let installed = dir.join("installed.lock");
    let complete = || expect.iter().all(|p| dir.join(p).exists());
    if std::fs::read(&installed).ok().as_deref() == Some(&lock[..]) && complete() {
        return Ok(dir.to_path_buf());
    }
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(manifest.join(file), dir.join(file))
            .map_err(|e| format!("{}: {e}", manifest.join(file).display()))?;
    }
    // `--legacy-peer-deps`: peers (a Node server a dashboard package names) are not wanted;
    // only the packages' static files are used.
    let status = Command::new("npm")
        .args([
            "ci",
            "--omit=dev",
            "--ignore-scripts",
            "--legacy-peer-deps",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ])
        .current_dir(dir)
        .status()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if !status.success() {
        return Err(format!("npm ci failed ({status})"));
    }
    std::fs::write(&installed, &lock).map_err(|e| e.to_string())?;
    if !complete() {
        return Err(format!("npm ci did not install {expect:?}"));
    }
    Ok(dir.to_path_buf())
}

/// Tells cargo to run the build script again on every build while something is missing (a
/// path that never exists counts as changed), so that installing npm is enough.
pub(crate) fn rerun_until_complete(out: &Path) {
    println!(
        "cargo:rerun-if-changed={}",
        out.join("npm-missing").display()
    );
}

/// A `cargo:warning` that says what is missing and how to get it.
pub(crate) fn warn_missing(what: &str, why: &str) {
    println!(
        "cargo:warning={what} ({why}); install Node.js and npm (e.g. `apt-get install npm`) and \
         run `cargo build` again"
    );
}
