//! The `/v1` routes. Every account route passes the guard first (address rate limit, bearer
//! token, token subject = path account, account rate limit), so a refused request never reaches
//! the vault and charges nothing. Bodies are parsed after the guard; vault calls run on the
//! blocking pool.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Extension, MatchedPath, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, http::Method};

use super::errors::{ApiError, ErrorCode, JsonBody, method_not_allowed, not_found};
use super::{AppState, MAX_BODY_BYTES, auth};
use crate::VaultError;
use crate::metrics::metrics;
use crate::wire::*;

/// Every route the server answers, as (method, path template). The OpenAPI document must
/// describe exactly these (a test checks it), and the router must serve each.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/accounts/{account}/registration/start"),
    ("post", "/v1/accounts/{account}/registration/finish"),
    ("post", "/v1/accounts/{account}/login/start"),
    ("post", "/v1/accounts/{account}/login/finish"),
    ("get", "/v1/accounts/{account}"),
    ("delete", "/v1/accounts/{account}"),
    ("get", "/v1/accounts/{account}/head"),
    ("put", "/v1/accounts/{account}/head"),
    ("get", "/v1/openapi.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

/// The account a request was authenticated for.
#[derive(Clone, Debug)]
pub struct Account(pub String);

pub fn router(state: AppState) -> Router {
    let accounts = Router::new()
        .route("/v1/accounts/{account}", get(status).delete(delete))
        .route(
            "/v1/accounts/{account}/registration/start",
            post(registration_start),
        )
        .route(
            "/v1/accounts/{account}/registration/finish",
            post(registration_finish),
        )
        .route("/v1/accounts/{account}/login/start", post(login_start))
        .route("/v1/accounts/{account}/login/finish", post(login_finish))
        .route("/v1/accounts/{account}/head", get(head).put(set_head))
        .route_layer(middleware::from_fn_with_state(state.clone(), guard));
    let mut app = Router::new()
        .merge(accounts)
        .route("/v1/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if state.metrics {
        app = app.route("/metrics", get(metrics_text));
    }
    app.route_layer(middleware::from_fn(mark_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(log_requests))
        .with_state(state)
}

fn client_ip(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Authenticates and rate-limits an account route.
async fn guard(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    mut req: Request,
    next: Next,
) -> Response {
    match admit(&s, path, &req) {
        Ok(account) => {
            req.extensions_mut().insert(Account(account.clone()));
            let mut res = next.run(req).await;
            res.extensions_mut().insert(Account(account));
            res
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

fn admit(
    s: &AppState,
    path: Result<Path<String>, PathRejection>,
    req: &Request,
) -> Result<String, VaultError> {
    if let Some(limiter) = &s.per_address {
        limiter
            .check(&client_ip(req))
            .map_err(|retry_after| VaultError::RateLimited { retry_after })?;
    }
    let subject = s.issuers.verify(auth::bearer(req.headers())?)?;
    let Path(account) =
        path.map_err(|e| VaultError::BadRequest(format!("bad account in the path: {e}")))?;
    if subject != account {
        return Err(VaultError::Forbidden(
            "the token is for another account".into(),
        ));
    }
    if let Some(limiter) = &s.per_account {
        limiter
            .check(&account)
            .map_err(|retry_after| VaultError::RateLimited { retry_after })?;
    }
    Ok(account)
}

/// The route template a request matched (`/v1/accounts/{account}/login/start`), for the
/// metrics: a label never carries an account.
#[derive(Clone, Debug)]
struct RouteLabel(String);

async fn mark_route(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let mut res = next.run(req).await;
    if let Some(r) = route {
        res.extensions_mut().insert(RouteLabel(r));
    }
    res
}

/// One log line per request: method, path, status, error code, account, client, time. Never a
/// header or a body: those carry tokens and protocol messages. Also counts the request in the
/// metrics, by route template, method and status.
async fn log_requests(req: Request, next: Next) -> Response {
    let method: Method = req.method().clone();
    let path = req.uri().path().to_owned();
    let client = client_ip(&req);
    let started = Instant::now();
    let res = next.run(req).await;
    let elapsed = started.elapsed();
    let micros = elapsed.as_micros() as u64;
    let status = res.status().as_u16();
    let route = res
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0.as_str())
        .unwrap_or("unmatched");
    let m = metrics();
    m.http_requests
        .with_label_values(&[route, method.as_str(), res.status().as_str()])
        .inc();
    m.http_latency
        .with_label_values(&[route])
        .observe(elapsed.as_secs_f64());
    let code = res
        .extensions()
        .get::<ErrorCode>()
        .map(|c| c.0)
        .unwrap_or("");
    let account = res
        .extensions()
        .get::<Account>()
        .map(|a| a.0.as_str())
        .unwrap_or("");
    if res.status().is_server_error() {
        tracing::warn!(%method, %path, status, code, account, %client, micros, "request");
    } else {
        tracing::info!(%method, %path, status, code, account, %client, micros, "request");
    }
    res
}

type ApiResult<T> = Result<T, ApiError>;

async fn registration_start(
    State(s): State<AppState>,
    Extension(Account(a)): Extension<Account>,
    JsonBody(req): JsonBody<RegistrationStartRequest>,
) -> ApiResult<Json<RegistrationStartResponse>> {
    s.call(move |v| v.registration_start(&a, &req))
        .await
        .map(Json)
}

async fn registration_finish(
    State(s): State<AppState>,
    Extension(Account(a)): Extension<Account>,
    JsonBody(req): JsonBody<RegistrationFinishRequest>,
) -> ApiResult<Json<RegistrationFinishResponse>> {
    s.call(move |v| v.registration_finish(&a, &req))
        .await
        .map(Json)
}

async fn login_start(
    State(s): State<AppState>,
    Extension(Account(a)): Extension<Account>,
    JsonBody(req): JsonBody<LoginStartRequest>,
) -> ApiResult<Json<LoginStartResponse>> {
    s.call(move |v| v.login_start(&a, &req)).await.map(Json)
}

async fn login_finish(
    State(s): State<AppState>,
    Extension(Account(a)): Extension<Account>,
    JsonBody(req): JsonBody<LoginFinishRequest>,
) -> ApiResult<Json<LoginFinishResponse>> {
    s.call(move |v| v.login_finish(&a, &req)).await.map(Json)
}

async fn status(
    State(s): State<AppState>,
    Extension(Account(a)): Extension<Account>,
) -> ApiResult<Json<AccountStatus>> {
    s.call(move |v| v.status(&a)).await.map(Json)
}

async fn head(
    State(s): State<AppState>,
    Extension(Account(a)): Extension<Account>,
) -> ApiResult<Response> {
    Ok(match s.call(move |v| v.head(&a)).await? {
        Some(h) => Json(h).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

async fn set_head(
    State(s): State<AppState>,
    Extension(Account(a)): Extension<Account>,
    JsonBody(h): JsonBody<Head>,
) -> ApiResult<StatusCode> {
    s.call(move |v| v.set_head(&a, &h)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(
    State(s): State<AppState>,
    Extension(Account(a)): Extension<Account>,
) -> ApiResult<Json<DeleteResponse>> {
    let deleted = s.call(move |v| v.delete(&a)).await?;
    Ok(Json(DeleteResponse { deleted }))
}

async fn openapi() -> Json<&'static serde_json::Value> {
    Json(super::openapi::document())
}

/// Liveness: the process answers. Touches nothing else.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the database answers. 503 `unavailable` with `Retry-After` when it does not.
async fn readyz(State(s): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    s.call(|v| v.store().ping()).await?;
    Ok(Json(serde_json::json!({ "status": "ready" })))
}

async fn metrics_text() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use tower::ServiceExt;

    use super::*;
    use crate::http::auth::{Issuer, Issuers};
    use crate::setup::MasterKey;
    use crate::sqlite::SqliteStore;
    use crate::{Policy, Vault};

    fn app() -> Router {
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let master = MasterKey::from_hex(&"ab".repeat(32)).unwrap();
        let vault = Vault::new(store, &master, Policy::default()).unwrap();
        let issuers = Issuers(vec![Issuer::hs256("t", &[7u8; 32], None).unwrap()]);
        router(AppState::new(vault, issuers, None, None))
    }

    #[tokio::test]
    async fn every_listed_route_is_served() {
        let app = app();
        for (method, path) in ROUTES {
            let uri = path.replace("{account}", "alice");
            let req = axum::http::Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .body(Body::from("{}"))
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            let expected = if uri.contains("/accounts/") {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::OK
            };
            assert_eq!(res.status(), expected, "{method} {uri}");
        }
    }

    #[tokio::test]
    async fn unknown_paths_and_methods_answer_json() {
        let app = app();
        for (method, uri, status) in [
            ("GET", "/v2/nothing", StatusCode::NOT_FOUND),
            (
                "PATCH",
                "/v1/accounts/alice",
                StatusCode::METHOD_NOT_ALLOWED,
            ),
        ] {
            let req = axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), status);
            let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
            let e: ErrorBody = serde_json::from_slice(&body).unwrap();
            assert!(!e.error.is_empty());
        }
    }
}
