//! `pave-sample`: the sample service as its own program (see the library for what it does).

fn main() -> std::process::ExitCode {
    pave_sample::main()
}
