//! Keyset paging cursors: the sort key values and pk of the row a page ends (or, going
//! back, starts) at. Opaque to clients (hex of a small JSON array), so the format can
//! change; a page is defined by position in the order, not by an offset, so inserts
//! and deletes between requests never make rows repeat or vanish.

use serde_json::Value;

use super::sql::{Cell, Kind};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// Rows before this position (a `previous` link) instead of after it.
    pub backward: bool,
    pub pk: i64,
    pub keys: Vec<Cell>,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let mut items = vec![Value::from(u8::from(self.backward)), Value::from(self.pk)];
        for k in &self.keys {
            items.push(match k {
                Cell::I64(Some(v)) => Value::from(*v),
                Cell::F64(Some(v)) => serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number),
                Cell::Text(Some(s)) => Value::from(s.as_str()),
                _ => Value::Null,
            });
        }
        let json = Value::Array(items).to_string();
        json.bytes().map(|b| format!("{b:02x}")).collect()
    }

    /// Decodes a cursor for a query sorted by keys of `kinds`.
    pub fn decode(s: &str, kinds: &[Kind]) -> Result<Cursor> {
        let bad = || Error::invalid_at("value", "_cursor", "Invalid paging cursor: follow the Bundle's links");
        if !s.len().is_multiple_of(2) || s.len() > 16_384 {
            return Err(bad());
        }
        let bytes: Vec<u8> = (0..s.len())
            .step_by(2)
            .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        let items = v.as_array().ok_or_else(bad)?;
        if items.len() != kinds.len() + 2 {
            return Err(bad());
        }
        let backward = items[0].as_u64().ok_or_else(bad)? == 1;
        let pk = items[1].as_i64().ok_or_else(bad)?;
        let mut keys = Vec::with_capacity(kinds.len());
        for (item, kind) in items[2..].iter().zip(kinds) {
            keys.push(match (kind, item) {
                (Kind::I64, Value::Null) => Cell::I64(None),
                (Kind::F64, Value::Null) => Cell::F64(None),
                (Kind::Text, Value::Null) => Cell::Text(None),
                (Kind::I64, v) => Cell::I64(Some(v.as_i64().ok_or_else(bad)?)),
                (Kind::F64, v) => Cell::F64(Some(v.as_f64().ok_or_else(bad)?)),
                (Kind::Text, v) => Cell::Text(Some(v.as_str().ok_or_else(bad)?.to_string())),
                (Kind::Bytes, _) => return Err(bad()),
            });
        }
        Ok(Cursor { backward, pk, keys })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let c = Cursor {
            backward: true,
            pk: 42,
            keys: vec![Cell::Text(Some("zoë".into())), Cell::I64(None), Cell::F64(Some(1.5))],
        };
        let d = Cursor::decode(&c.encode(), &[Kind::Text, Kind::I64, Kind::F64]).unwrap();
        assert_eq!(d, c);
        assert!(Cursor::decode("zz", &[]).is_err());
        assert!(Cursor::decode(&c.encode(), &[Kind::Text]).is_err());
    }
}
