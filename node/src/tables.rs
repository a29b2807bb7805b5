//! Helpers shared by the state machines' redb tables: JSON rows, storage errors with context,
//! and the postcard encoding of tables in Raft snapshots.

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Maps a redb error to [`Error::Storage`] with what was being done.
pub fn storage(action: &'static str) -> impl Fn(redb::Error) -> Error {
    move |e| Error::Storage { action, message: e.to_string() }
}

/// Encodes a row as JSON (serialising our own plain types cannot fail).
pub fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Decodes a JSON row; a row that does not decode is reported as corrupt.
pub fn from_json<T: for<'de> Deserialize<'de>>(b: &[u8], action: &'static str) -> Result<T> {
    serde_json::from_slice(b).map_err(|e| Error::Storage { action, message: format!("corrupt record: {e}") })
}

/// Decodes a snapshot blob (postcard). Blobs borrow from `b` where their types allow
/// (`&str`, `&[u8]`), so restoring a snapshot does not copy every row first.
pub fn from_blob<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<T> {
    postcard::from_bytes(b).map_err(|e| Error::Storage { action: "decoding a snapshot", message: e.to_string() })
}

/// Appends `v` to `out` as a postcard byte string: its encoded length (a varint), then its
/// postcard encoding. This is how a `Vec<u8>` field holding `v`'s blob is encoded, without
/// building that intermediate `Vec`: snapshots of large tables are laid out once, in place.
/// Snapshots are postcard rather than JSON, whose number-per-byte arrays would multiply their size.
pub fn append_blob<T: Serialize>(v: &T, out: &mut Vec<u8>) -> Result<()> {
    const MAX_VARINT: usize = 10;
    let err = |e: postcard::Error| Error::Storage { action: "encoding a snapshot", message: e.to_string() };
    let start = out.len();
    out.resize(start + MAX_VARINT, 0);
    *out = postcard::to_extend(v, std::mem::take(out)).map_err(err)?;
    let len = out.len() - start - MAX_VARINT;
    let mut prefix = [0u8; MAX_VARINT];
    let n = postcard::to_slice(&len, &mut prefix).map_err(err)?.len();
    out.copy_within(start + MAX_VARINT.., start + n);
    out[start..start + n].copy_from_slice(&prefix[..n]);
    out.truncate(start + n + len);
    Ok(())
}

/// A table's rows as a postcard sequence of `(key, value)` pairs, read from the table while
/// encoding (so a snapshot never holds a second copy of every row). A missing table is empty.
/// The encoding equals that of `Vec<(K, Vec<u8>)>` with the rows' owned values.
pub struct TableRows<'a, K: redb::Key + 'static>(pub Option<&'a redb::ReadOnlyTable<K, &'static [u8]>>);

impl<K> Serialize for TableRows<'_, K>
where
    K: redb::Key + 'static,
    for<'b> K::SelfType<'b>: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        let Some(table) = self.0 else { return s.serialize_seq(Some(0))?.end() };
        let len = table.len().map_err(S::Error::custom)?;
        let mut seq = s.serialize_seq(Some(len as usize))?;
        for row in table.iter().map_err(S::Error::custom)? {
            let (k, v) = row.map_err(S::Error::custom)?;
            seq.serialize_element(&(k.value(), Bytes(v.value())))?;
        }
        seq.end()
    }
}

/// A byte string (postcard: length, then the bytes, as for a `Vec<u8>`).
struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Opens `def` for a snapshot: `None` when the table was never created.
pub fn open_for_snapshot<K: redb::Key + 'static>(
    tx: &redb::ReadTransaction,
    def: redb::TableDefinition<'static, K, &'static [u8]>,
) -> Result<Option<redb::ReadOnlyTable<K, &'static [u8]>>> {
    match tx.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(storage("snapshot")(e.into())),
    }
}

/// Reads and decodes one JSON row of `table` inside a write transaction.
pub fn get_json<T: for<'de> Deserialize<'de>>(
    table: &redb::Table<'_, &'static str, &'static [u8]>,
    key: &str,
    action: &'static str,
) -> Result<Option<T>> {
    match table.get(key).map_err(|e| storage(action)(e.into()))? {
        Some(v) => Ok(Some(from_json(v.value(), action)?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use redb::ReadableDatabase;

    use super::*;

    const T: redb::TableDefinition<'static, &str, &[u8]> = redb::TableDefinition::new("t");

    /// Snapshots written in place must decode as the owned layout earlier versions wrote
    /// (`Vec<u8>` fields holding `Vec<(String, Vec<u8>)>` blobs), so old `snapshot.bin` files still load.
    #[test]
    fn in_place_snapshot_encoding_matches_the_owned_layout() {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("t.redb")).unwrap();
        let rows: Vec<(String, Vec<u8>)> = (0..300).map(|i| (format!("key-{i}"), vec![i as u8; i % 200])).collect();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(T).unwrap();
            for (k, v) in &rows {
                t.insert(k.as_str(), v.as_slice()).unwrap();
            }
        }
        tx.commit().unwrap();
        let rtx = db.begin_read().unwrap();
        let table = open_for_snapshot(&rtx, T).unwrap();
        let missing = open_for_snapshot(&rtx, redb::TableDefinition::<&str, &[u8]>::new("missing")).unwrap();
        assert!(missing.is_none());

        let mut out = b"header".to_vec();
        append_blob(&(TableRows(table.as_ref()), TableRows(missing.as_ref())), &mut out).unwrap();
        append_blob(&TableRows(missing.as_ref()), &mut out).unwrap();

        let mut sorted = rows.clone();
        sorted.sort();
        let inner = postcard::to_allocvec(&(sorted.clone(), Vec::<(String, Vec<u8>)>::new())).unwrap();
        let empty = postcard::to_allocvec(&Vec::<(String, Vec<u8>)>::new()).unwrap();
        let mut owned = b"header".to_vec();
        owned.extend(postcard::to_allocvec(&(inner, empty)).unwrap());
        assert_eq!(out, owned);

        let (first, second): (&[u8], &[u8]) = from_blob(&out[6..]).unwrap();
        type Rows<'a> = Vec<(&'a str, &'a [u8])>;
        let (got, none): (Rows<'_>, Rows<'_>) = from_blob(first).unwrap();
        assert_eq!(got.len(), 300);
        assert!(got.iter().zip(&sorted).all(|((k, v), (ok, ov))| k == ok && v == ov));
        assert!(none.is_empty());
        assert_eq!(from_blob::<Rows<'_>>(second).unwrap().len(), 0);
    }
}
