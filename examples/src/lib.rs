//! ferrocache-examples: the patterns of `ferrocache-client` in two small web services that run
//! (`db-cache`, `sessions`), and the pieces their binaries and end-to-end tests share.
//!
//! Owns: the example services (routers, state), the database layer over SQLite or PostgreSQL,
//! a small HTTP client for the load mode and the tests. Must not touch: the cache protocol (the
//! client crate's), the server.

#![forbid(unsafe_code)]

pub mod db;
pub mod db_cache;
pub mod http_client;
pub mod load;
pub mod sessions_app;

/// Binds `address` and serves `router` until the process ends; returns the bound address
/// (port 0 picks a free one) once it listens.
pub async fn serve(
    address: &str,
    router: axum::Router,
) -> std::io::Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            eprintln!("server on {bound} stopped: {error}");
        }
    });
    Ok((bound, task))
}
