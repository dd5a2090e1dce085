//! `stackpro`: the StackPro Data Platform command line. Parsing lives in `cli`; the work
//! lives in the `pipeline` library.

mod cli;

// mimalloc: the release path allocates per record on every core; glibc's allocator spent
// about 5% of a 1M-record release (malloc, free, realloc) in the throughput harness.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
