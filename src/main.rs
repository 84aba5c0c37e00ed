//! The `samle` command. All the work is in the library; this only parses the command line
//! and turns an error into a readable message and an exit code.

use clap::Parser as _;

/// mimalloc returns freed memory to the system where glibc's arenas kept it resident: the
/// server's own memory under load, see docs/performance.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = samle::cli::Cli::parse();
    // One TLS stack for the whole binary (LDAP and HTTP connectors): rustls with ring.
    // Installing it as the process default lets every client find it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(samle::cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
