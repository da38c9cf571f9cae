//! How refusals travel: every [`VaultError`] becomes one HTTP status and an [`ErrorBody`], and
//! request bodies are parsed so that bad input is always a 4xx with a JSON body, never a 5xx.
//!
//! | error                | status | code                 |
//! |----------------------|--------|----------------------|
//! | `BadRequest`         | 400    | `bad_request`        |
//! | `Unauthorized`       | 401    | `unauthorized`       |
//! | `WrongPassword`      | 403    | `wrong_password`     |
//! | `Forbidden`          | 403    | `forbidden`          |
//! | `NotRegistered`      | 404    | `not_registered`     |
//! | `AlreadyRegistered`  | 409    | `already_registered` |
//! | `LoginExpired`       | 409    | `login_expired`      |
//! | `HeadBehind`         | 409    | `head_behind`        |
//! | `Gone`               | 410    | `gone`               |
//! | body over the limit  | 413    | `too_large`          |
//! | `RateLimited`        | 429    | `rate_limited`       |
//! | `Store`/`Unavailable`| 503    | `unavailable`        |
//!
//! 401 is kept for the bearer token alone, so a client can always tell "your token is not
//! accepted" (nothing was charged) from "your password is wrong" (403 `wrong_password`, with
//! `guesses_left`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::VaultError;
use crate::wire::ErrorBody;

/// Seconds a client is told to wait after a storage failure.
pub const STORE_RETRY_AFTER: u64 = 2;

/// The stable error code of a response, kept in its extensions for the request log.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);

/// The status and stable code of each refusal.
pub fn status_and_code(e: &VaultError) -> (StatusCode, &'static str) {
    match e {
        VaultError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        VaultError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
        VaultError::WrongPassword { .. } => (StatusCode::FORBIDDEN, "wrong_password"),
        VaultError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        VaultError::NotRegistered => (StatusCode::NOT_FOUND, "not_registered"),
        VaultError::AlreadyRegistered => (StatusCode::CONFLICT, "already_registered"),
        VaultError::LoginExpired => (StatusCode::CONFLICT, "login_expired"),
        VaultError::HeadBehind { .. } => (StatusCode::CONFLICT, "head_behind"),
        VaultError::Gone => (StatusCode::GONE, "gone"),
        VaultError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        VaultError::Store(_) | VaultError::Unavailable(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    }
}

/// A refusal on its way out.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: code.into(),
                message: message.into(),
                guesses_left: None,
                head_seq: None,
            },
            retry_after: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        let (status, code) = status_and_code(&e);
        let message = match &e {
            // The detail stays in the server's log: it may name tables or files.
            VaultError::Store(detail) | VaultError::Unavailable(detail) => {
                crate::metrics::metrics().storage_failures.inc();
                tracing::error!(error = %detail, "storage failure");
                "the vault's storage is unavailable; try again shortly".to_string()
            }
            other => other.to_string(),
        };
        let mut out = ApiError::new(status, code, message);
        match e {
            VaultError::WrongPassword { guesses_left } => {
                out.body.guesses_left = Some(guesses_left)
            }
            VaultError::Gone => out.body.guesses_left = Some(0),
            VaultError::HeadBehind { current } => out.body.head_seq = Some(current),
            VaultError::RateLimited { retry_after } => out.retry_after = Some(retry_after),
            VaultError::Store(_) | VaultError::Unavailable(_) => {
                out.retry_after = Some(STORE_RETRY_AFTER)
            }
            _ => {}
        }
        out
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = ErrorCode(static_code(&self.body.error));
        let mut res = (self.status, axum::Json(self.body)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"arca-vault\""),
            );
        }
        res.extensions_mut().insert(code);
        res
    }
}

/// The codes as `'static` strings for the log (the body owns a `String`).
fn static_code(code: &str) -> &'static str {
    const CODES: &[&str] = &[
        "wrong_password",
        "gone",
        "not_registered",
        "already_registered",
        "login_expired",
        "forbidden",
        "unauthorized",
        "bad_request",
        "head_behind",
        "rate_limited",
        "unavailable",
        "not_found",
        "method_not_allowed",
        "too_large",
    ];
    CODES
        .iter()
        .find(|c| **c == code)
        .copied()
        .unwrap_or("other")
}

/// A JSON request body. Unlike `axum::Json` it ignores the content type, and every failure
/// (not JSON, wrong fields, bad base64, too large) is a 400 or 413 with an [`ErrorBody`].
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!(
                        "the request body is larger than {} bytes",
                        super::MAX_BODY_BYTES
                    ),
                )
            } else {
                ApiError::from(VaultError::BadRequest(format!(
                    "cannot read the request body: {e}"
                )))
            }
        })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            ApiError::from(VaultError::BadRequest(format!(
                "the body is not the expected JSON: {e}"
            )))
        })
    }
}

/// For unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see /v1/openapi.json",
    )
}

/// For a known path with another method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see /v1/openapi.json",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(res: Response) -> ErrorBody {
        let bytes = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn storage_failures_are_503_with_retry_after_and_no_detail() {
        let res = ApiError::from(VaultError::Store("disk I/O error in table records".into()))
            .into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "2");
        let body = body_of(res).await;
        assert_eq!(body.error, "unavailable");
        assert!(!body.message.contains("records"), "{}", body.message);
    }

    #[tokio::test]
    async fn wrong_password_carries_the_count() {
        let res = ApiError::from(VaultError::WrongPassword { guesses_left: 3 }).into_response();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let body = body_of(res).await;
        assert_eq!(
            (body.error.as_str(), body.guesses_left),
            ("wrong_password", Some(3))
        );
    }

    #[test]
    fn every_code_is_known_to_the_log() {
        for e in [
            VaultError::WrongPassword { guesses_left: 1 },
            VaultError::Gone,
            VaultError::NotRegistered,
            VaultError::AlreadyRegistered,
            VaultError::LoginExpired,
            VaultError::Forbidden(String::new()),
            VaultError::BadRequest(String::new()),
            VaultError::HeadBehind { current: 1 },
            VaultError::Store(String::new()),
            VaultError::Unauthorized(String::new()),
            VaultError::RateLimited { retry_after: 1 },
            VaultError::Unavailable(String::new()),
        ] {
            let (_, code) = status_and_code(&e);
            assert_eq!(static_code(code), code);
        }
    }
}
