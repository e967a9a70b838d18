//! PostgreSQL's `COPY … FROM STDIN (FORMAT BINARY)` for large plain inserts. Measured
//! against `INSERT … SELECT * FROM UNNEST(arrays)` for 500,000 `idx_token`-shaped rows:
//! 1.3–1.8 s of the server's CPU against 2.7–3.0 s (benches/README.md): the arrays are
//! received, unnested into a tuple store and then inserted, where `COPY` reads each
//! field straight into its row. `COPY` has no `ON CONFLICT` and no `RETURNING`, and costs
//! one round trip more, so only plain inserts of many rows take it.
//!
//! `COPY` needs sqlx 0.9.1 or later: 0.9.0 left Nagle's algorithm on for TCP, and the
//! `CopyDone` message, sent right after the data with nothing to read in between, then
//! waited for PostgreSQL's delayed ACK: audited reads fell from ~1,500 to ~650 req/s,
//! the projector's `COPY`s each stalling (benches/README.md).

use sqlx::postgres::PgConnection;

use super::{ColType, Rows};
use crate::store::StoreError;
use crate::store::sql::Bind;

/// The binary format's signature, then its flags and header-extension length (both 0).
const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// What is sent at once: large enough that messages are few, small enough that a big
/// transaction's rows are not copied into one buffer as large as themselves.
const SEND_AT: usize = 1 << 20;

/// Copies every row into its table, in the connection's transaction if it is in one.
pub(super) async fn insert(conn: &mut PgConnection, rows: &Rows) -> Result<(), StoreError> {
    let statement = format!(
        "COPY {} ({}) FROM STDIN (FORMAT BINARY)",
        rows.table,
        rows.column_list()
    );
    let mut sink = conn.copy_in_raw(&statement).await?;
    let width = rows.columns.len().max(1);
    let mut buf = Vec::with_capacity(SEND_AT + 4096);
    buf.extend_from_slice(HEADER);
    for row in rows.cells.chunks(width) {
        encode_row(&mut buf, rows.columns, row)?;
        if buf.len() >= SEND_AT {
            sink.send(buf.as_slice()).await?;
            buf.clear();
        }
    }
    buf.extend_from_slice(&(-1i16).to_be_bytes());
    sink.send(buf.as_slice()).await?;
    sink.finish().await?;
    Ok(())
}

/// One tuple: its field count, then each field's length (-1 for NULL) and bytes in the
/// column type's binary form. A bind of another type than its column's is NULL, as in
/// the `UNNEST` form (`super::array_of`).
fn encode_row(buf: &mut Vec<u8>, columns: &[(&str, ColType)], row: &[Bind]) -> Result<(), StoreError> {
    let count = i16::try_from(columns.len()).map_err(|_| too_large("columns"))?;
    buf.extend_from_slice(&count.to_be_bytes());
    for ((_, ty), bind) in columns.iter().zip(row) {
        match (ty, bind) {
            (ColType::I64, Bind::I64(Some(v))) => field(buf, &v.to_be_bytes())?,
            (ColType::F64, Bind::F64(Some(v))) => field(buf, &v.to_bits().to_be_bytes())?,
            (ColType::Text, Bind::Text(Some(s))) => field(buf, s.as_bytes())?,
            (ColType::Text, Bind::Shared(Some(s))) => field(buf, s.as_bytes())?,
            (ColType::Bool, b) => field(buf, &[u8::from(matches!(b, Bind::Bool(true)))])?,
            (ColType::Bytes, Bind::Bytes(Some(v))) => field(buf, v)?,
            _ => buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }
    Ok(())
}

fn field(buf: &mut Vec<u8>, bytes: &[u8]) -> Result<(), StoreError> {
    let len = i32::try_from(bytes.len()).map_err(|_| too_large("a value"))?;
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(bytes);
    Ok(())
}

fn too_large(what: &str) -> StoreError {
    StoreError::Database(sqlx::Error::Protocol(format!("{what} too large for COPY")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tuple_is_its_fields_lengths_and_big_endian_bytes() {
        let cols: &[(&str, ColType)] = &[
            ("a", ColType::I64),
            ("b", ColType::Text),
            ("c", ColType::Bool),
            ("d", ColType::F64),
            ("e", ColType::Bytes),
            ("f", ColType::Text),
        ];
        let row = [
            Bind::I64(Some(258)),
            Bind::Shared(Some("é".into())),
            Bind::Bool(true),
            Bind::F64(Some(1.5)),
            Bind::Bytes(None),
            Bind::I64(Some(7)),
        ];
        let mut buf = Vec::new();
        encode_row(&mut buf, cols, &row).unwrap();
        let mut want: Vec<u8> = vec![0, 6];
        want.extend([0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 2]);
        want.extend([0, 0, 0, 2, 0xc3, 0xa9]);
        want.extend([0, 0, 0, 1, 1]);
        want.extend([0, 0, 0, 8, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
        want.extend([0xff, 0xff, 0xff, 0xff]);
        // A bind of another type than its column's is NULL, as in the UNNEST form.
        want.extend([0xff, 0xff, 0xff, 0xff]);
        assert_eq!(buf, want);
    }

    #[test]
    fn the_header_is_the_signature_flags_and_extension() {
        assert_eq!(HEADER.len(), 11 + 4 + 4);
        assert!(HEADER.starts_with(b"PGCOPY\n\xff\r\n\0"));
    }
}
