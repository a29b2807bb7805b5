//! Helpers shared by the state machines' redb tables: JSON rows and storage errors with context.

use redb::ReadableTable;
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

/// Encodes a snapshot blob compactly (postcard); snapshots carry whole tables, so JSON's
/// number-per-byte arrays would multiply their size.
pub fn to_blob<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(v).map_err(|e| Error::Storage { action: "encoding a snapshot", message: e.to_string() })
}

/// Decodes a snapshot blob made by [`to_blob`].
pub fn from_blob<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T> {
    postcard::from_bytes(b).map_err(|e| Error::Storage { action: "decoding a snapshot", message: e.to_string() })
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
