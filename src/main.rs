//! The `veloz` binary: parses the command line and runs a subcommand (see `veloz --help`).

fn main() -> std::process::ExitCode {
    veloz::cli::main()
}
