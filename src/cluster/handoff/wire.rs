//! What a node sends the new owner of its shards (`POST /internal/v1/shards`): chunks of
//! key/value pairs, then one message that says which shards were sent whole. MessagePack
//! (rmp-serde), keys and values as binary strings.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The path of the route that takes these messages.
pub const PATH: &str = "/internal/v1/shards";

/// Bytes, encoded as one MessagePack binary string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob(pub Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

struct BlobVisitor;

impl<'de> Visitor<'de> for BlobVisitor {
    type Value = Blob;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("bytes")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Blob, E> {
        Ok(Blob(bytes.to_vec()))
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Blob, E> {
        Ok(Blob(bytes))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Blob, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(byte) = seq.next_element()? {
            bytes.push(byte);
        }
        Ok(Blob(bytes))
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Blob, D::Error> {
        deserializer.deserialize_byte_buf(BlobVisitor)
    }
}

/// One message of a handoff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Pairs of shards in transit, written as one batch.
    Chunk(Vec<(Blob, Blob)>),
    /// These shards (with how many keys each) were sent whole: the receiver serves them.
    Done(Vec<(u16, u64)>),
}

impl Message {
    /// Encodes the message.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        rmp_serde::to_vec(self).map_err(|e| e.to_string())
    }

    /// Decodes a message.
    pub fn decode(bytes: &[u8]) -> Result<Message, String> {
        rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_back_with_bytes_as_binary_strings() {
        let chunk = Message::Chunk(vec![(Blob(vec![b'u', 0, 255]), Blob(vec![1; 100]))]);
        let bytes = chunk.encode().unwrap();
        assert!(bytes.len() < 120, "{} bytes", bytes.len());
        assert_eq!(Message::decode(&bytes).unwrap(), chunk);
        let done = Message::Done(vec![(3, 10), (1023, 0)]);
        assert_eq!(Message::decode(&done.encode().unwrap()).unwrap(), done);
        assert!(Message::decode(b"nonsense").is_err());
    }
}
