//! Helpers shared by the integration tests that run the `memdiff` binary.
#![allow(dead_code)] // each test file uses its own subset

use std::process::{Command, Output};

/// Runs the built binary with `args`.
pub fn memdiff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_memdiff"))
        .args(args)
        .output()
        .expect("running memdiff")
}

/// Stdout of a command that must succeed.
pub fn ok(args: &[&str]) -> String {
    let out = memdiff(args);
    assert!(
        out.status.success(),
        "memdiff {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The error line of a failing command (exit 1, one line starting `error:`).
pub fn err(args: &[&str]) -> String {
    let out = memdiff(args);
    assert_eq!(out.status.code(), Some(1), "memdiff {args:?} should fail");
    let e = String::from_utf8(out.stderr).unwrap();
    let line = e.lines().last().unwrap_or_default().to_string();
    assert!(line.starts_with("error: "), "{e}");
    line
}

/// Runs the built binary with `args` in the folder `cwd`, with `$MEMDIFF_MNIST_DIR` unset
/// unless `mnist_dir` gives it (so the result does not depend on the caller's environment).
pub fn memdiff_in(cwd: &std::path::Path, args: &[&str], mnist_dir: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_memdiff"));
    c.args(args)
        .current_dir(cwd)
        .env_remove("MEMDIFF_MNIST_DIR")
        .env("RAYON_NUM_THREADS", "2");
    if let Some(d) = mnist_dir {
        c.env("MEMDIFF_MNIST_DIR", d);
    }
    c.output().expect("running memdiff")
}

/// (stdout, stderr) of a command run in `cwd` that must succeed.
pub fn ok_in(cwd: &std::path::Path, args: &[&str], mnist_dir: Option<&str>) -> (String, String) {
    let out = memdiff_in(cwd, args, mnist_dir);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "memdiff {args:?} failed: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

/// The error line of a command run in `cwd` that must fail (exit 1, one `error:` line).
pub fn err_in(cwd: &std::path::Path, args: &[&str], mnist_dir: Option<&str>) -> String {
    let out = memdiff_in(cwd, args, mnist_dir);
    assert_eq!(out.status.code(), Some(1), "memdiff {args:?} should fail");
    let e = String::from_utf8(out.stderr).unwrap();
    let line = e.lines().last().unwrap_or_default().to_string();
    assert!(
        line.starts_with("error: ") && !e.contains("panicked"),
        "{e}"
    );
    line
}
