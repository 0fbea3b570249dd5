//! `markgate`: the command line. Parses arguments and hands over to one module per command.

mod cli;

/// mimalloc: the gateways allocate and free many small buffers per message and request
/// across threads, where glibc's allocator spends its time consolidating free lists.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
