//! db-cache: an HTTP service over a database with the cache in front (`serve`), and a load
//! mode that measures what the cache changes (`load`).
//!
//! `cargo run -p ferrocache-examples --bin db-cache -- serve --cache 127.0.0.1:11211` (SQLite in
//! memory), or with `--database-url postgres://...`; `... -- load --cache 127.0.0.1:11211`.

#![forbid(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use ferrocache_client::AsyncClient;
use ferrocache_examples::db::Database;
use ferrocache_examples::db_cache::{self, CacheMode, DbCache};
use ferrocache_examples::load::{self, Workload};
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "An HTTP service over a database with ferrocached in front")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve GET/PUT /items/{id} and GET /stats.
    Serve(ServeArgs),
    /// Measure a zipf workload without and with the cache.
    Load(LoadArgs),
}

#[derive(Args)]
struct Common {
    /// The cache server(s), `host:port[:weight]`, comma-separated.
    #[arg(long, default_value = "127.0.0.1:11211")]
    cache: String,
    /// PostgreSQL (`postgres://user@host:port/db`); SQLite when absent.
    #[arg(long)]
    database_url: Option<String>,
    /// The SQLite database file (`:memory:`: a private in-memory one).
    #[arg(long, default_value = ":memory:")]
    sqlite: String,
    /// Rows to seed `items` with.
    #[arg(long, default_value_t = 100_000)]
    rows: i64,
    /// Seconds an item stays cached.
    #[arg(long, default_value_t = 300)]
    ttl: u32,
    /// Added to every database read, to stand for a slow query.
    #[arg(long, default_value_t = 0)]
    query_delay_ms: u64,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    #[arg(long, value_enum, default_value_t = CacheMode::Lease)]
    mode: CacheMode,
}

#[derive(Args)]
struct LoadArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long, default_value_t = 100_000)]
    requests: usize,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    #[arg(long, default_value_t = 0.9)]
    zipf: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

impl Common {
    async fn open(&self) -> Result<(Arc<Database>, AsyncClient), Box<dyn std::error::Error>> {
        let delay = Duration::from_millis(self.query_delay_ms);
        let db = match &self.database_url {
            Some(url) => Database::postgres(url, delay).await?,
            None => Database::sqlite(&self.sqlite, delay)?,
        };
        db.seed(self.rows).await?;
        let servers = self
            .cache
            .split(',')
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let cache = AsyncClient::new(servers, Default::default())?;
        Ok((Arc::new(db), cache))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Serve(args) => {
            let (db, cache) = args.common.open().await?;
            let app = DbCache::new(db, cache, args.mode, args.common.ttl);
            let (address, server) =
                ferrocache_examples::serve(&args.listen, db_cache::router(app)).await?;
            println!(
                "db-cache listening on http://{address} (cache mode {:?})",
                args.mode
            );
            server.await?;
        }
        Command::Load(args) => {
            let (db, cache) = args.common.open().await?;
            let workload = Workload {
                rows: args.common.rows,
                requests: args.requests,
                connections: args.connections,
                zipf: args.zipf,
                seed: args.seed,
            };
            let mut reports = Vec::new();
            for mode in [CacheMode::Off, CacheMode::Lease] {
                reports.push(
                    load::run(db.clone(), cache.clone(), mode, args.common.ttl, &workload).await?,
                );
            }
            load::print(&workload, &reports);
        }
    }
    Ok(())
}
