//! The `stackpro` binary itself: its commands and exit codes.
//!
//! Having an integration test here also makes `cargo test` build the binary (with the
//! features of that build), which the workspace end-to-end tests in `tests/` run.

use std::process::Command;

fn stackpro(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stackpro"))
        .args(args)
        .env_remove("STACKPRO_CONFIG")
        .env_remove("STACKPRO_BACKEND")
        .output()
        .expect("run stackpro")
}

#[test]
fn help_lists_every_command_and_bad_usage_exits_2() {
    let help = stackpro(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for command in [
        "demo",
        "run",
        "consent",
        "gen",
        "policy",
        "verify",
        "releases",
        "query",
        "setup",
        "retention",
    ] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(command)),
            "--help must list `{command}`:\n{text}"
        );
    }
    let bad = stackpro(&["no-such-command"]);
    assert_eq!(bad.status.code(), Some(2), "bad usage exits 2");
}
