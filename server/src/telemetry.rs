//! Logs and traces: the fmt subscriber (text or JSON, filtered by `CARNET_LOG`), and,
//! when an OTLP endpoint is configured, OpenTelemetry spans exported over OTLP/HTTP
//! (docs/operations.md). Incoming W3C `traceparent` headers continue the caller's trace.

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Flushes and stops the exporter when dropped (at the end of `serve`), so the spans of
/// the last requests are not lost.
pub struct Guard(Option<SdkTracerProvider>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && let Err(e) = p.shutdown()
        {
            eprintln!("OpenTelemetry: could not flush the last spans: {e}");
        }
    }
}

/// Installs the global subscriber. `otlp_endpoint` is the collector's base URL
/// (`http://host:4318`); spans go to `{endpoint}/v1/traces`.
pub fn init(
    format: LogFormat,
    otlp_endpoint: Option<&str>,
    service_name: &str,
    default_filter: &str,
) -> anyhow::Result<Guard> {
    let filter = EnvFilter::try_from_env("CARNET_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let provider = match otlp_endpoint {
        Some(endpoint) => Some(provider(endpoint, service_name)?),
        None => None,
    };
    let otel = provider
        .as_ref()
        .map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("carnet")));
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let _ = match format {
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true))
            .try_init(),
        LogFormat::Text => registry.with(tracing_subscriber::fmt::layer()).try_init(),
    };
    Ok(Guard(provider))
}

fn provider(endpoint: &str, service_name: &str) -> anyhow::Result<SdkTracerProvider> {
    let base = endpoint.trim_end_matches('/');
    let url = if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .build()
        .map_err(|e| anyhow::anyhow!("OpenTelemetry exporter for {endpoint}: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name.to_string())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The caller's trace context from a request's `traceparent`/`tracestate` headers.
pub fn parent_context(headers: &axum::http::HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&Headers(headers))
}

struct Headers<'a>(&'a axum::http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}
