//! The example's database: a table of 100,000 items in SQLite (bundled, in memory or a file)
//! or PostgreSQL (`--database-url`), with a counter of the queries that reach it, which is what
//! the cache exists to lower.
//!
//! Owns: the schema, seeding, the item read and update, the query counters, the optional
//! query delay that makes a stampede visible. Must not touch: the cache.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;

/// One row of `items`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: i64,
    pub name: String,
    pub price_cents: i64,
}

#[derive(Debug, Error)]
pub enum DbError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("the database task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

enum Backend {
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    Postgres(tokio_postgres::Client),
}

/// The database and its counters.
pub struct Database {
    backend: Backend,
    /// Every item read that reached the database.
    reads: AtomicU64,
    writes: AtomicU64,
    /// Added to every read, to stand for a slow query (0 by default).
    read_delay: Duration,
}

impl Database {
    /// SQLite at `path` (`:memory:` for a private in-memory database).
    pub fn sqlite(path: &str, read_delay: Duration) -> Result<Self, DbError> {
        let connection = rusqlite::Connection::open(path)?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS items (
                 id INTEGER PRIMARY KEY, name TEXT NOT NULL, price_cents INTEGER NOT NULL);",
        )?;
        Ok(Self::with(
            Backend::Sqlite(Arc::new(Mutex::new(connection))),
            read_delay,
        ))
    }

    /// PostgreSQL at `url` (`postgres://user@host:port/db`), without TLS: the examples talk
    /// to a database on the same machine.
    pub async fn postgres(url: &str, read_delay: Duration) -> Result<Self, DbError> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                eprintln!("postgres connection ended: {error}");
            }
        });
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS items (
                     id BIGINT PRIMARY KEY, name TEXT NOT NULL, price_cents BIGINT NOT NULL)",
            )
            .await?;
        Ok(Self::with(Backend::Postgres(client), read_delay))
    }

    fn with(backend: Backend, read_delay: Duration) -> Self {
        Database {
            backend,
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            read_delay,
        }
    }

    /// Fills `items` with rows 1..=`rows` unless it already has that many.
    pub async fn seed(&self, rows: i64) -> Result<(), DbError> {
        match &self.backend {
            Backend::Sqlite(connection) => {
                let connection = connection.clone();
                tokio::task::spawn_blocking(move || -> Result<(), DbError> {
                    let mut connection = connection.lock().unwrap_or_else(|e| e.into_inner());
                    let have: i64 =
                        connection.query_row("SELECT count(*) FROM items", [], |r| r.get(0))?;
                    if have >= rows {
                        return Ok(());
                    }
                    let transaction = connection.transaction()?;
                    {
                        let mut insert = transaction.prepare(
                            "INSERT OR IGNORE INTO items (id, name, price_cents) VALUES (?1, ?2, ?3)",
                        )?;
                        for id in 1..=rows {
                            insert.execute(rusqlite::params![id, format!("item {id}"), id * 7 % 10_000])?;
                        }
                    }
                    transaction.commit()?;
                    Ok(())
                })
                .await?
            }
            Backend::Postgres(client) => {
                client
                    .execute(
                        "INSERT INTO items (id, name, price_cents)
                         SELECT g, 'item ' || g, g * 7 % 10000 FROM generate_series(1, $1::bigint) g
                         ON CONFLICT (id) DO NOTHING",
                        &[&rows],
                    )
                    .await?;
                Ok(())
            }
        }
    }

    /// One item by id: the query the cache saves.
    pub async fn read(&self, id: i64) -> Result<Option<Item>, DbError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        if !self.read_delay.is_zero() {
            // The latency of a slow query or a distant database; concurrent reads overlap in
            // it, as they would on a database with a connection each.
            tokio::time::sleep(self.read_delay).await;
        }
        match &self.backend {
            Backend::Sqlite(connection) => {
                let connection = connection.clone();
                tokio::task::spawn_blocking(move || -> Result<Option<Item>, DbError> {
                    let connection = connection.lock().unwrap_or_else(|e| e.into_inner());
                    let mut select = connection
                        .prepare_cached("SELECT id, name, price_cents FROM items WHERE id = ?1")?;
                    let mut rows = select.query([id])?;
                    Ok(match rows.next()? {
                        Some(row) => Some(Item {
                            id: row.get(0)?,
                            name: row.get(1)?,
                            price_cents: row.get(2)?,
                        }),
                        None => None,
                    })
                })
                .await?
            }
            Backend::Postgres(client) => {
                let row = client
                    .query_opt(
                        "SELECT id, name, price_cents FROM items WHERE id = $1",
                        &[&id],
                    )
                    .await?;
                Ok(row.map(|row| Item {
                    id: row.get(0),
                    name: row.get(1),
                    price_cents: row.get(2),
                }))
            }
        }
    }

    /// Renames an item; true when it existed.
    pub async fn rename(&self, id: i64, name: String) -> Result<bool, DbError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        match &self.backend {
            Backend::Sqlite(connection) => {
                let connection = connection.clone();
                tokio::task::spawn_blocking(move || -> Result<bool, DbError> {
                    let connection = connection.lock().unwrap_or_else(|e| e.into_inner());
                    let changed = connection.execute(
                        "UPDATE items SET name = ?1 WHERE id = ?2",
                        rusqlite::params![name, id],
                    )?;
                    Ok(changed == 1)
                })
                .await?
            }
            Backend::Postgres(client) => {
                let changed = client
                    .execute("UPDATE items SET name = $1 WHERE id = $2", &[&name, &id])
                    .await?;
                Ok(changed == 1)
            }
        }
    }

    /// Item reads that reached the database so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}
