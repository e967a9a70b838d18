//! The `\,` `\|` `\$` `\\` escapes of search values.

/// Splits on unescaped `sep`, keeping escapes in the pieces (they are removed by
/// [`unescape`] once a piece is a leaf, so an inner separator survives an outer split).
pub fn split(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_unescaped_only() {
        assert_eq!(split(r"a,b\,c,,d", ','), vec!["a", r"b\,c", "", "d"]);
        assert_eq!(unescape(r"b\,c\\d\|"), r"b,c\d|");
        assert_eq!(split(r"s\|x|c", '|'), vec![r"s\|x", "c"]);
    }
}
