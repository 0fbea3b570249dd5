//! `markgate`: the command line. Parses arguments and hands over to one module per command.

mod cli;

/// mimalloc rather than the system allocator: a proxied request allocates and frees many
/// small objects across threads, where glibc's malloc spent about a seventh of the HTTP
/// gateway's CPU (`tests/bench/http_proxy.sh` under perf).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
