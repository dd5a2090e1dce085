//! The AWS tests run only against an emulator. Whether one is configured is decided when
//! the tests are built, so that without it they are reported as *ignored* (with the
//! reason), never as passed.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(aws_emulator)");
    println!("cargo::rerun-if-env-changed=STACKPRO_TEST_AWS_ENDPOINT");
    if std::env::var("STACKPRO_TEST_AWS_ENDPOINT").is_ok_and(|v| !v.trim().is_empty()) {
        println!("cargo::rustc-cfg=aws_emulator");
    }
}
