//! Query strings and form bodies (`application/x-www-form-urlencoded`), decoded
//! strictly: invalid UTF-8 is refused rather than silently replaced (a search for
//! "\u{FFFD}" is not what the client asked for), and so is an absurd number of
//! parameters, before any of them costs work.

use percent_encoding::percent_decode;

use crate::error::Error;

/// Most parameters one query string or form body may carry.
pub const MAX_PARAMETERS: usize = 1000;

pub fn parse_form(bytes: &[u8]) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for piece in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        if out.len() == MAX_PARAMETERS {
            return Err(Error::invalid(
                "too-costly",
                format!("More than {MAX_PARAMETERS} parameters"),
            ));
        }
        let (k, v) = match piece.iter().position(|b| *b == b'=') {
            Some(i) => (&piece[..i], &piece[i + 1..]),
            None => (piece, &b""[..]),
        };
        let key = decode(k).map_err(|_| Error::invalid("value", "A parameter name is not valid UTF-8"))?;
        let value = decode(v).map_err(|_| {
            Error::invalid_at(
                "value",
                key.clone(),
                format!("The value of parameter '{key}' is not valid UTF-8"),
            )
        })?;
        out.push((key, value));
    }
    Ok(out)
}

fn decode(raw: &[u8]) -> Result<String, std::str::Utf8Error> {
    let plus: Vec<u8> = raw.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
    percent_decode(&plus).decode_utf8().map(|c| c.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_like_forms_do() {
        let got = parse_form(b"name=%C3%89lise+Roy&code=a%7Cb&flag&=x").unwrap_or_default();
        assert_eq!(
            got,
            vec![
                ("name".to_string(), "Élise Roy".to_string()),
                ("code".to_string(), "a|b".to_string()),
                ("flag".to_string(), String::new()),
                (String::new(), "x".to_string()),
            ]
        );
    }

    #[test]
    fn refuses_bad_utf8_and_floods() {
        assert!(parse_form(b"name=%FF").is_err());
        assert!(parse_form(b"%C3=x").is_err());
        let many = "a=1&".repeat(MAX_PARAMETERS + 1);
        assert!(parse_form(many.as_bytes()).is_err());
        assert!(parse_form("a=1&".repeat(MAX_PARAMETERS).as_bytes()).is_ok());
    }
}
