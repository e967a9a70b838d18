//! The ceiling for a FHIR read over HTTP: axum answering with the same bytes from
//! memory, no database. Load runs compare `GET Patient/{id}` with this.
//! `cargo run --release -p carnet-benches --bin static-server -- 127.0.0.1:8090 FILE`

use axum::Router;
use axum::http::header;
use axum::routing::get;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8090".into());
    let body: &'static [u8] = match args.next() {
        Some(path) => Box::leak(std::fs::read(path)?.into_boxed_slice()),
        None => br#"{"resourceType":"Patient","id":"static"}"#,
    };
    let app = Router::new().route(
        "/fhir/Patient/{id}",
        get(move || async move { ([(header::CONTENT_TYPE, "application/fhir+json; charset=utf-8")], body) }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
