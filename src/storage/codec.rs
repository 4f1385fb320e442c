//! Encodes persisted values: one format-version byte, then MessagePack with field names
//! (`rmp_serde::to_vec_named`), so that adding a field never breaks old data.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StorageError;

/// The version byte written before every value.
pub(crate) const FORMAT_VERSION: u8 = 1;

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StorageError> {
    let mut bytes = vec![FORMAT_VERSION];
    rmp_serde::encode::write_named(&mut bytes, value)
        .map_err(|e| StorageError::Encode(e.to_string()))?;
    Ok(bytes)
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StorageError> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, body)) => {
            rmp_serde::from_slice(body).map_err(|e| StorageError::Decode(e.to_string()))
        }
        Some((version, _)) => Err(StorageError::Decode(format!(
            "unknown format version {version}"
        ))),
        None => Err(StorageError::Decode("empty value".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_versions() {
        let bytes = encode(&("a", 3u32)).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<(String, u32)>(&bytes).unwrap(), ("a".into(), 3));
        let mut future = bytes;
        future[0] = 9;
        assert!(decode::<(String, u32)>(&future).is_err());
        assert!(decode::<(String, u32)>(&[]).is_err());
    }
}
