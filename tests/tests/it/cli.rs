//! The command line: exit codes and messages an operator reads.

use super::*;

#[test]
fn misconfiguration_exits_2_with_a_clear_message() {
    let env = Env::new();
    // A mistyped raw folder is not created empty and run over as if nothing were pending.
    let typo = env.path("rwa");
    let out = env.run(&["run", "--raw", typo.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("raw location") && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(!typo.exists());

    std::fs::create_dir_all(env.path("raw")).expect("raw folder");
    let out = env
        .cmd(&["run"])
        .env_remove("STACKPRO_HASH_KEY")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("STACKPRO_HASH_KEY"));

    std::fs::write(
        env.path("bad.json"),
        r#"{"id":"p","k":20,"datasets":{"d":{"fields":[{"name":"a","action":"kep"}]}}}"#,
    )
    .expect("write");
    let out = env.run(&[
        "policy",
        "check",
        env.path("bad.json").to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("datasets.d.fields[0].action"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let ok = env.ok(&[
        "policy",
        "check",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/default-v2.json"),
    ]);
    assert!(ok.contains("default-v2") && ok.contains("quasi-identifier"));
    for cmd in [
        "demo", "run", "consent", "gen", "policy", "verify", "releases", "query",
    ] {
        let help = env.ok(&[cmd, "--help"]);
        assert!(help.contains("Usage"), "{cmd} --help");
    }
}

#[test]
fn gen_refuses_a_tenant_that_would_leave_the_layout() {
    // A tenant id that is no path segment would write an object the worker never reads
    // (or, unescaped, into another tenant's folder): refused before anything is written.
    let env = Env::new();
    for tenant in ["../t-0043", "t-1/x", ".hidden"] {
        let out = env.run(&[
            "gen",
            "--dataset",
            "contacts",
            "--records",
            "10",
            "--tenant",
            tenant,
            "--out",
            env.path("out").to_str().expect("utf8"),
        ]);
        assert_eq!(out.status.code(), Some(2), "{tenant}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("is not an id"),
            "{tenant}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!env.path("out").exists(), "{tenant}: nothing written");
    }
}
