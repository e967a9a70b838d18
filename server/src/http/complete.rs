//! A request that has started runs to its end even when its client leaves. hyper drops
//! a request's future when the connection closes, and a future dropped between two
//! messages of a database exchange can leave its pooled connection out of step with the
//! server: sqlx's `COPY` (store::bulk::copy), dropped half-way, writes its `CopyFail`
//! without counting the answer it will get, so the connection's next statement would
//! read the answer of the one before. Run in its own task, the request's transaction is
//! committed or rolled back as if the client had stayed; only the answer is lost.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::error::Error;

pub async fn run_to_completion(req: Request, next: Next) -> Response {
    let work = tokio::spawn(next.run(req).instrument(tracing::Span::current()));
    match work.await {
        Ok(response) => response,
        // A panic in a handler: the client gets an OperationOutcome, the server stays up.
        Err(e) => {
            tracing::error!(error = %e, "a request's task failed");
            Error::Internal("the request failed".into()).into_response()
        }
    }
}
