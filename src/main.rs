//! `markgate`: the command line. Parses arguments and hands over to one module per command.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
