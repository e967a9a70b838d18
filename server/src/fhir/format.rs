//! Content negotiation: which FHIR format a request body is in and which one the
//! client wants back (`Accept`, `_format`, `_pretty`).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/fhir+json; charset=utf-8",
            Format::Xml => "application/fhir+xml; charset=utf-8",
        }
    }
}

/// What the response should look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    pub format: Format,
    pub pretty: bool,
}

impl Default for Output {
    fn default() -> Output {
        Output {
            format: Format::Json,
            pretty: false,
        }
    }
}

/// Maps one media type (or `_format` shorthand) to a format; `None` when unsupported.
fn media_type(s: &str) -> Option<Format> {
    let base = s.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match base.as_str() {
        "json" | "application/fhir+json" | "application/json" | "application/json+fhir" | "text/json" => {
            Some(Format::Json)
        }
        "xml" | "application/fhir+xml" | "application/xml" | "application/xml+fhir" | "text/xml" => Some(Format::Xml),
        _ => None,
    }
}

/// The format of a request body from its `Content-Type`; `Err` carries the refused type.
pub fn request_format(content_type: Option<&str>) -> Result<Format, String> {
    match content_type {
        None => Ok(Format::Json),
        Some(ct) => media_type(ct).ok_or_else(|| ct.to_string()),
    }
}

/// The response format: `_format` wins over `Accept`; JSON when the client accepts
/// anything. `Err` when nothing the client accepts can be produced (406).
pub fn response_format(
    accept: Option<&str>,
    format_param: Option<&str>,
    pretty: Option<&str>,
) -> Result<Output, String> {
    let pretty = matches!(pretty, Some("true"));
    if let Some(f) = format_param {
        return media_type(f)
            .map(|format| Output { format, pretty })
            .ok_or_else(|| f.to_string());
    }
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output {
            format: Format::Json,
            pretty,
        });
    };
    // Pick the acceptable type with the highest q; ties keep the client's order.
    let mut best: Option<(f32, Format)> = None;
    for part in accept.split(',') {
        let mut pieces = part.split(';');
        let ty = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = pieces
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        let format = match ty.as_str() {
            "*/*" | "application/*" => Some(Format::Json),
            "text/*" => Some(Format::Xml),
            other => media_type(other),
        };
        if let Some(format) = format
            && best.is_none_or(|(bq, _)| q > bq)
        {
            best = Some((q, format));
        }
    }
    best.map(|(_, format)| Output { format, pretty })
        .ok_or_else(|| accept.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(response_format(None, None, None).unwrap().format, Format::Json);
        assert_eq!(
            response_format(Some("application/fhir+xml"), None, None)
                .unwrap()
                .format,
            Format::Xml
        );
        assert_eq!(
            response_format(Some("application/fhir+xml;q=0.5, application/fhir+json"), None, None)
                .unwrap()
                .format,
            Format::Json
        );
        assert_eq!(
            response_format(Some("application/fhir+json"), Some("xml"), None)
                .unwrap()
                .format,
            Format::Xml
        );
        assert!(response_format(Some("image/png"), None, None).is_err());
        assert!(response_format(None, Some("ttl"), None).is_err());
        assert_eq!(
            response_format(Some("text/html,*/*;q=0.8"), None, None).unwrap().format,
            Format::Json
        );
        assert!(request_format(Some("text/plain")).is_err());
        assert_eq!(
            request_format(Some("application/fhir+xml; charset=utf-8")),
            Ok(Format::Xml)
        );
    }
}
