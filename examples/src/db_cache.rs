//! The db-cache service: `GET /items/{id}` reads an item through the cache (`get_or_load`,
//! leases against stampedes), `PUT /items/{id}` renames it in the database and the cache
//! (`write_through`), `GET /stats` tells how many reads reached the database and how the
//! cache answered.
//!
//! Owns: the routes, the cache modes (`lease`, `naive` cache-aside for comparison, `off`), the
//! counters. Must not touch: SQL (the `db` module), the protocol (the client).

use crate::db::{Database, DbError, Item};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ferrocache_client::{AsyncClient, LoadError, LoadOutcome};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How reads use the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CacheMode {
    /// `get_or_load`: leases, one database read per cold key however many ask at once.
    Lease,
    /// Plain cache-aside (get, on a miss read the database and set): every concurrent miss
    /// reads the database. For comparison only.
    Naive,
    /// No cache: every read is a database read.
    Off,
}

/// What a read's `x-cache` header says and the stats count.
fn outcome_name(outcome: LoadOutcome) -> &'static str {
    match outcome {
        LoadOutcome::Hit => "hit",
        LoadOutcome::Loaded => "loaded",
        LoadOutcome::Refreshed => "refreshed",
        LoadOutcome::StaleServed => "stale",
        LoadOutcome::Waited => "waited",
        LoadOutcome::WaitTimedOut => "wait-timed-out",
        LoadOutcome::CacheUnavailable => "cache-unavailable",
    }
}

/// Answers served from the cache, for the hit ratio.
const CACHE_ANSWERS: [&str; 4] = ["hit", "stale", "waited", "naive-hit"];

pub struct DbCache {
    pub db: Arc<Database>,
    pub cache: AsyncClient,
    pub mode: CacheMode,
    /// Seconds an item stays cached.
    pub ttl: u32,
    answers: Mutex<BTreeMap<&'static str, u64>>,
}

/// `GET /stats`.
#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Stats {
    pub db_reads: u64,
    pub db_writes: u64,
    /// Reads by how they were answered (`hit`, `loaded`, `waited`, ...).
    pub answers: BTreeMap<String, u64>,
    /// Reads answered by the cache over all reads.
    pub hit_ratio: f64,
}

impl DbCache {
    pub fn new(db: Arc<Database>, cache: AsyncClient, mode: CacheMode, ttl: u32) -> Arc<Self> {
        Arc::new(DbCache {
            db,
            cache,
            mode,
            ttl,
            answers: Mutex::new(BTreeMap::new()),
        })
    }

    fn count(&self, answer: &'static str) {
        *self
            .answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(answer)
            .or_default() += 1;
    }

    pub fn stats(&self) -> Stats {
        let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        let total: u64 = answers.values().sum();
        let cached: u64 = CACHE_ANSWERS
            .iter()
            .filter_map(|name| answers.get(name))
            .sum();
        Stats {
            db_reads: self.db.reads(),
            db_writes: self.db.writes(),
            answers: answers.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            hit_ratio: if total == 0 {
                0.0
            } else {
                cached as f64 / total as f64
            },
        }
    }

    fn key(id: i64) -> Vec<u8> {
        format!("item:{id}").into_bytes()
    }

    /// The row as the cache holds it: its JSON, `null` for no such row (cached too, so a
    /// missing id does not reach the database on every request).
    async fn load_json(&self, id: i64) -> Result<Vec<u8>, DbError> {
        let item = self.db.read(id).await?;
        Ok(serde_json::to_vec(&item).expect("items serialise"))
    }

    /// The item's JSON and how it was answered.
    pub async fn read(&self, id: i64) -> Result<(Vec<u8>, &'static str), DbError> {
        let key = Self::key(id);
        let answer = match self.mode {
            CacheMode::Off => (self.load_json(id).await?, "off"),
            CacheMode::Lease => {
                match self
                    .cache
                    .get_or_load(&key, self.ttl, || self.load_json(id))
                    .await
                {
                    Ok(loaded) => (loaded.value, outcome_name(loaded.outcome)),
                    Err(LoadError::Loader(error)) => return Err(error),
                    Err(LoadError::InvalidKey(error)) => {
                        unreachable!("item keys are valid: {error}")
                    }
                }
            }
            CacheMode::Naive => match self.cache.get(&key).await {
                Ok(Some(item)) => (item.value, "naive-hit"),
                _ => {
                    let json = self.load_json(id).await?;
                    let _ = self.cache.set(&key, &json, i64::from(self.ttl)).await;
                    (json, "naive-miss")
                }
            },
        };
        self.count(answer.1);
        Ok(answer)
    }

    /// Renames item `id` in the database, then the cache. None when there is no such item.
    pub async fn rename(&self, id: i64, name: String) -> Result<Option<Item>, DbError> {
        let Some(mut item) = self.db.read(id).await? else {
            return Ok(None);
        };
        item.name = name.clone();
        let json = serde_json::to_vec(&Some(&item)).expect("items serialise");
        if self.mode == CacheMode::Off {
            self.db.rename(id, name).await?;
            return Ok(Some(item));
        }
        let written = self
            .cache
            .write_through(&Self::key(id), &json, self.ttl, || async {
                self.db.rename(id, name.clone()).await.map(drop)
            })
            .await;
        match written {
            Ok(_) => Ok(Some(item)),
            Err(ferrocache_client::WriteError::Database(error)) => Err(error),
            Err(ferrocache_client::WriteError::InvalidKey(error)) => {
                unreachable!("item keys are valid: {error}")
            }
        }
    }
}

fn json_response(status: StatusCode, body: Vec<u8>, answer: Option<&'static str>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Some(answer) = answer {
        headers.insert("x-cache", HeaderValue::from_static(answer));
    }
    response
}

fn database_error(error: DbError) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("database: {error}\n"),
    )
        .into_response()
}

async fn get_item(State(app): State<Arc<DbCache>>, Path(id): Path<i64>) -> Response {
    match app.read(id).await {
        Ok((json, answer)) if json == b"null" => {
            json_response(StatusCode::NOT_FOUND, json, Some(answer))
        }
        Ok((json, answer)) => json_response(StatusCode::OK, json, Some(answer)),
        Err(error) => database_error(error),
    }
}

async fn put_item(State(app): State<Arc<DbCache>>, Path(id): Path<i64>, name: String) -> Response {
    match app.rename(id, name).await {
        Ok(Some(item)) => json_response(
            StatusCode::OK,
            serde_json::to_vec(&item).expect("items serialise"),
            None,
        ),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(error) => database_error(error),
    }
}

async fn get_stats(State(app): State<Arc<DbCache>>) -> Response {
    json_response(
        StatusCode::OK,
        serde_json::to_vec(&app.stats()).expect("stats serialise"),
        None,
    )
}

pub fn router(app: Arc<DbCache>) -> Router {
    Router::new()
        .route("/items/{id}", get(get_item).put(put_item))
        .route("/stats", get(get_stats))
        .with_state(app)
}
