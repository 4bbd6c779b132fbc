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
