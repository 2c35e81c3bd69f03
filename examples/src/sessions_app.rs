//! The sessions example: a login form, a page that shows who is logged in, logout. Any number
//! of instances share their sessions through the cache, so a user who logs in on one is logged
//! in on all; an idle session ends when its TTL runs out, each page view pushing it on.
//!
//! Owns: the routes, the cookie (`sid`, HttpOnly, SameSite=Lax, Path=/), the HTML. Must not
//! touch: session ids and storage (`ferrocache_client::SessionStore`).

use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use ferrocache_client::{AsyncClient, SessionId, SessionStore};
use std::sync::Arc;

/// The cookie that carries the session id.
pub const COOKIE: &str = "sid";

pub struct SessionsApp {
    /// Shown on every page, to tell the instances apart.
    pub instance: String,
    pub sessions: SessionStore<AsyncClient>,
}

#[derive(serde::Deserialize)]
struct Login {
    username: String,
}

/// The session id in the request's cookies, if it has a well-formed one.
fn session_cookie(headers: &HeaderMap) -> Option<SessionId> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|cookie| cookie.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, value)| value.parse().ok())
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn page(instance: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>sessions on {instance}</title>\
         <style>body{{font-family:sans-serif;margin:3em}} .who{{font-size:1.4em}}</style></head>\
         <body><p>instance <b id=\"instance\">{instance}</b></p>{body}</body></html>",
        instance = escape(instance)
    ))
}

fn unavailable(error: impl std::fmt::Display) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("session store unavailable: {error}\n"),
    )
        .into_response()
}

async fn home(State(app): State<Arc<SessionsApp>>, headers: HeaderMap) -> Response {
    let user = match session_cookie(&headers) {
        Some(id) => match app.sessions.load(&id).await {
            Ok(user) => user,
            Err(error) => return unavailable(error),
        },
        None => None,
    };
    match user {
        Some(user) => page(
            &app.instance,
            &format!(
                "<p class=\"who\">Logged in as <b id=\"user\">{}</b></p>\
                 <form method=\"post\" action=\"/logout\"><button id=\"logout\">Log out</button></form>",
                escape(&String::from_utf8_lossy(&user))
            ),
        )
        .into_response(),
        None => page(
            &app.instance,
            "<p id=\"anonymous\">Not logged in.</p>\
             <form method=\"post\" action=\"/login\"><label>Name \
             <input id=\"username\" name=\"username\" required maxlength=\"64\"></label> \
             <button id=\"login\">Log in</button></form>",
        )
        .into_response(),
    }
}

fn redirect_home(cookie: String) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static("/"));
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("cookie is ASCII"),
    );
    response
}

async fn login(State(app): State<Arc<SessionsApp>>, Form(form): Form<Login>) -> Response {
    let username = form.username.trim();
    if username.is_empty() || username.len() > 64 {
        return (StatusCode::BAD_REQUEST, "a name of 1 to 64 bytes\n").into_response();
    }
    match app.sessions.create(username.as_bytes()).await {
        Ok(id) => redirect_home(format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax")),
        Err(error) => unavailable(error),
    }
}

async fn logout(State(app): State<Arc<SessionsApp>>, headers: HeaderMap) -> Response {
    if let Some(id) = session_cookie(&headers)
        && let Err(error) = app.sessions.destroy(&id).await
    {
        return unavailable(error);
    }
    redirect_home(format!(
        "{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
    ))
}

pub fn router(app: Arc<SessionsApp>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .with_state(app)
}
