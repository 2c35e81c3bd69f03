//! A keep-alive HTTP/1.1 client on hyper's connection API, for the load mode and the tests:
//! one connection, one request at a time, the status, the `x-cache` header and the body.
//!
//! Owns: connecting and exchanging requests. Must not touch: what the services answer.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum HttpError {
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("bad request: {0}")]
    Request(#[from] hyper::http::Error),
}

/// A response as the callers need it.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub status: u16,
    /// The `x-cache` header (how db-cache answered a read), empty if absent.
    pub cache: String,
    pub body: Vec<u8>,
}

impl HttpReply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive connection.
pub struct HttpConnection {
    address: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

impl HttpConnection {
    pub async fn connect(address: SocketAddr) -> Result<Self, HttpError> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(HttpConnection { address, sender })
    }

    /// `method path` with `body`; waits for the whole response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<HttpReply, HttpError> {
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.address.to_string())
            .body(Full::new(Bytes::from(body.to_owned())))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let cache = response
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = response.into_body().collect().await?.to_bytes().to_vec();
        Ok(HttpReply {
            status,
            cache,
            body,
        })
    }
}

/// One request on a connection of its own.
pub async fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> Result<HttpReply, HttpError> {
    HttpConnection::connect(address)
        .await?
        .request(method, path, body)
        .await
}
