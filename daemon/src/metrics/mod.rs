//! The metrics endpoint (`--metrics-listen`): `GET /metrics` over HTTP/1.1 on a thread of its
//! own, off the request path.
//!
//! Owns: the metrics thread, its HTTP server (hyper on a single-threaded tokio runtime), content
//! negotiation (OpenMetrics when the scraper's `Accept` asks for it, the Prometheus text format
//! otherwise), the HTTP status of anything else, and the limits that keep a slow or hostile
//! scraper from costing more than its own connection: at most [`MAX_CONNECTIONS`] at once (more
//! are closed on arrival), [`MAX_HEAD_BYTES`] of request head (beyond it: 431), one request per
//! connection, and [`DEADLINE`] for the whole exchange (a scraper that never reads, or never
//! finishes its request, is dropped then). Must not touch: the event loops, or any counter (a
//! scrape reads what `stats` reads, see [`exposition`]).
//!
//! The worker threads never wait on this thread: a scrape only takes each partition's lock for
//! as long as copying its counters, as `stats` does.

pub mod exposition;

use exposition::{Exposition, Format};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Scrapes served at once; a connection beyond them is closed on arrival. Prometheus keeps one
/// per server scraping, so this leaves room for several servers and a person with curl.
pub const MAX_CONNECTIONS: usize = 16;

/// The most a request head (request line and headers) may take: hyper's smallest read buffer.
/// A longer head is answered 431 and the connection closed, so a scraper sending megabytes of
/// headers costs this much memory, not what it sends.
pub const MAX_HEAD_BYTES: usize = 8192;

/// The whole exchange (request in, response out) must fit in this; a connection still open
/// then is dropped. A scrape takes milliseconds; Prometheus's own timeout is 10 s.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Pause after a failed accept (out of descriptors, say) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Starts the metrics thread serving `listener`. The thread runs until the process exits.
pub fn spawn(listener: TcpListener, exposition: Exposition) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("ferrocache-metrics".to_string())
        .spawn(move || runtime.block_on(serve(listener, Arc::new(exposition))))?;
    Ok(())
}

/// Counts a connection being served; gives its place back when dropped.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>) -> Option<Slot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < MAX_CONNECTIONS).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot(Arc::clone(open)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn serve(listener: TcpListener, exposition: Arc<Exposition>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            log::error!("metrics endpoint cannot start: {e}");
            return;
        }
    };
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                log::warn!("metrics endpoint cannot accept: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Some(slot) = Slot::take(&open) else {
            log::debug!("metrics endpoint: {MAX_CONNECTIONS} scrapes open, closing another");
            continue;
        };
        let exposition = Arc::clone(&exposition);
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |request| {
                let response = respond(&request, &exposition);
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(DEADLINE, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::debug!("metrics endpoint: {e}"),
                Err(_) => log::debug!("metrics endpoint: a scrape outlasted {DEADLINE:?}"),
            }
        });
    }
}

/// The response to one request: a scrape for `GET /metrics` (and `HEAD`), 404 for another
/// path, 405 for another method. hyper itself answers malformed requests (400) and heads over
/// [`MAX_HEAD_BYTES`] (431).
fn respond(request: &Request<Incoming>, exposition: &Exposition) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let accept = request
        .headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let format = negotiate(&accept);
    match exposition.render(format) {
        Ok(body) => {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            );
            response
        }
        Err(_) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the metrics could not be encoded\n",
        ),
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// OpenMetrics when the `Accept` header ranks it at least as high as the Prometheus text format
/// (Prometheus sends `application/openmetrics-text;version=1.0.0,...,text/plain;version=0.0.4;
/// q=0.5,*/*;q=0.1`); the text format otherwise, and when there is no header.
pub fn negotiate(accept: &str) -> Format {
    let mut openmetrics = 0.0f32;
    let mut text = 0.0f32;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            "application/openmetrics-text" => openmetrics = openmetrics.max(quality),
            "text/plain" | "text/*" | "*/*" => text = text.max(quality),
            _ => {}
        }
    }
    if openmetrics > 0.0 && openmetrics >= text {
        Format::OpenMetrics
    } else {
        Format::Prometheus
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_only_when_the_scraper_prefers_it() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(prometheus), Format::OpenMetrics);
        assert_eq!(negotiate(""), Format::Prometheus);
        assert_eq!(negotiate("*/*"), Format::Prometheus);
        assert_eq!(negotiate("text/plain"), Format::Prometheus);
        assert_eq!(
            negotiate("text/plain;version=0.0.4, application/openmetrics-text; q=0.2"),
            Format::Prometheus
        );
        assert_eq!(
            negotiate("application/openmetrics-text; version=1.0.0"),
            Format::OpenMetrics
        );
        assert_eq!(
            negotiate("application/openmetrics-text;q=0"),
            Format::Prometheus
        );
    }
}
