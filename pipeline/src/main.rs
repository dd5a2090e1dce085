//! `stackpro`: the StackPro Data Platform command line. Parsing lives in `cli`; the work
//! lives in the `pipeline` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
