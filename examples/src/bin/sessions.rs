//! sessions: a web app whose sessions live in ferrocached, so that instances on two ports share
//! them: `cargo run -p ferrocache-examples --bin sessions -- --listen 127.0.0.1:8081 --name A`
//! and again with `--listen 127.0.0.1:8082 --name B`.

#![forbid(unsafe_code)]

use clap::Parser;
use ferrocache_client::{AsyncClient, SessionStore};
use ferrocache_examples::sessions_app::{self, SessionsApp};
use std::sync::Arc;

#[derive(Parser)]
#[command(about = "A login page whose sessions live in ferrocached")]
struct Cli {
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: String,
    /// The cache server(s), `host:port[:weight]`, comma-separated.
    #[arg(long, default_value = "127.0.0.1:11211")]
    cache: String,
    /// Shown on each page to tell the instances apart.
    #[arg(long, default_value = "A")]
    name: String,
    /// Seconds an idle session lives; each page view starts it again.
    #[arg(long, default_value_t = 1800)]
    session_ttl: u32,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cli = Cli::parse();
    let servers = cli
        .cache
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<_>, _>>()?;
    let client = AsyncClient::new(servers, Default::default())?;
    let app = Arc::new(SessionsApp {
        instance: cli.name.clone(),
        sessions: SessionStore::new(client, "session:", cli.session_ttl),
    });
    let (address, server) =
        ferrocache_examples::serve(&cli.listen, sessions_app::router(app)).await?;
    println!(
        "sessions instance {} listening on http://{address}",
        cli.name
    );
    server.await?;
    Ok(())
}
