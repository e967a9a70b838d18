//! Splits an expression into tokens.

use crate::ParseError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Ident(String),
    /// A backtick-delimited identifier: never a keyword.
    Quoted(String),
    Str(String),
    Num(String),
    /// `%name` environment variable.
    Env(String),
    /// `$this` and friends.
    Special(String),
    Dot,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Op(&'static str),
    LBrace,
    RBrace,
    /// `@2015-02-04T14:34:28Z`, `@T14:34`: the text after the `@`.
    Temporal(String),
}

pub(crate) fn tokenize(src: &str) -> Result<Vec<(usize, Token)>, ParseError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let err = |msg: &str| ParseError::new(start, msg);
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'.' => push(&mut out, &mut i, start, Token::Dot, 1),
            b'(' => push(&mut out, &mut i, start, Token::LParen, 1),
            b')' => push(&mut out, &mut i, start, Token::RParen, 1),
            b'[' => push(&mut out, &mut i, start, Token::LBracket, 1),
            b']' => push(&mut out, &mut i, start, Token::RBracket, 1),
            b',' => push(&mut out, &mut i, start, Token::Comma, 1),
            b'{' => push(&mut out, &mut i, start, Token::LBrace, 1),
            b'}' => push(&mut out, &mut i, start, Token::RBrace, 1),
            b'@' => {
                let len = temporal_len(&bytes[i + 1..]);
                if len == 0 {
                    return Err(err("expected a date or time after @"));
                }
                out.push((start, Token::Temporal(src[i + 1..i + 1 + len].to_owned())));
                i += 1 + len;
            }
            b'%' if matches!(bytes.get(i + 1), Some(b'`' | b'\'')) => {
                let delim = bytes[i + 1];
                let (text, next) = quoted(src, i + 1, delim).ok_or_else(|| err("unterminated literal"))?;
                out.push((start, Token::Env(text)));
                i = next;
            }
            b'|' => push(&mut out, &mut i, start, Token::Op("|"), 1),
            b'=' => push(&mut out, &mut i, start, Token::Op("="), 1),
            b'~' => push(&mut out, &mut i, start, Token::Op("~"), 1),
            b'!' if bytes.get(i + 1) == Some(&b'=') => push(&mut out, &mut i, start, Token::Op("!="), 2),
            b'!' if bytes.get(i + 1) == Some(&b'~') => push(&mut out, &mut i, start, Token::Op("!~"), 2),
            b'<' | b'>' => {
                let eq = bytes.get(i + 1) == Some(&b'=');
                let op = match (c, eq) {
                    (b'<', true) => "<=",
                    (b'<', false) => "<",
                    (_, true) => ">=",
                    _ => ">",
                };
                push(&mut out, &mut i, start, Token::Op(op), if eq { 2 } else { 1 })
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                let end = src[i + 2..].find("*/").ok_or_else(|| err("unterminated comment"))?;
                i += 2 + end + 2;
            }
            b'+' | b'-' | b'*' | b'/' | b'&' => {
                let op = match c {
                    b'+' => "+",
                    b'-' => "-",
                    b'*' => "*",
                    b'/' => "/",
                    _ => "&",
                };
                push(&mut out, &mut i, start, Token::Op(op), 1)
            }
            b'\'' | b'`' => {
                let (text, next) = quoted(src, i, c).ok_or_else(|| err("unterminated literal"))?;
                let tok = if c == b'\'' {
                    Token::Str(text)
                } else {
                    Token::Quoted(text)
                };
                out.push((start, tok));
                i = next;
            }
            b'%' | b'$' => {
                i += 1;
                let name_start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                if name_start == i {
                    return Err(err("expected a variable name"));
                }
                let name = src[name_start..i].to_owned();
                out.push((
                    start,
                    if c == b'%' {
                        Token::Env(name)
                    } else {
                        Token::Special(name)
                    },
                ));
            }
            b'0'..=b'9' => {
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                // A dot only belongs to the number when a digit follows (`1.5` vs `x[0].y`).
                if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                out.push((start, Token::Num(src[start..i].to_owned())));
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                out.push((start, Token::Ident(src[start..i].to_owned())));
            }
            _ => return Err(err("unexpected character")),
        }
    }
    Ok(out)
}

/// The length of a date/time literal body: digits, `-`, `:`, `.`, `T`, `Z` and a
/// timezone sign. A `-` or `+` only continues the literal when a digit follows, so
/// `@2015 - 1 year` is left for the parser.
fn temporal_len(b: &[u8]) -> usize {
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next_digit = b.get(i + 1).is_some_and(u8::is_ascii_digit);
        let ok = c.is_ascii_digit()
            || c == b'T'
            || c == b'Z'
            || ((c == b':' || c == b'.' || c == b'-' || c == b'+') && next_digit);
        if !ok {
            break;
        }
        i += 1;
    }
    i
}

fn push(out: &mut Vec<(usize, Token)>, i: &mut usize, start: usize, tok: Token, len: usize) {
    out.push((start, tok));
    *i += len;
}

/// Reads a quoted literal starting at `open`, handling FHIRPath escapes.
fn quoted(src: &str, open: usize, delim: u8) -> Option<(String, usize)> {
    let mut text = String::new();
    let mut chars = src[open + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        if c as u32 == u32::from(delim) {
            return Some((text, open + 1 + off + 1));
        }
        if c != '\\' {
            text.push(c);
            continue;
        }
        let (_, e) = chars.next()?;
        match e {
            'n' => text.push('\n'),
            'r' => text.push('\r'),
            't' => text.push('\t'),
            'f' => text.push('\u{c}'),
            'u' => {
                let hex: String = (0..4).filter_map(|_| chars.next().map(|(_, h)| h)).collect();
                text.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            other => text.push(other),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let toks: Vec<Token> = tokenize("a.where(b != 'x\\'y') | %resource[0]")
            .map(|v| v.into_iter().map(|(_, t)| t).collect())
            .unwrap_or_default();
        assert_eq!(
            toks,
            vec![
                Token::Ident("a".into()),
                Token::Dot,
                Token::Ident("where".into()),
                Token::LParen,
                Token::Ident("b".into()),
                Token::Op("!="),
                Token::Str("x'y".into()),
                Token::RParen,
                Token::Op("|"),
                Token::Env("resource".into()),
                Token::LBracket,
                Token::Num("0".into()),
                Token::RBracket,
            ]
        );
    }

    #[test]
    fn unterminated() {
        assert!(tokenize("'abc").is_err());
    }
}
