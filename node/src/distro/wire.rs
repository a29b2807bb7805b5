//! Distro messages as they travel between nodes: postcard inside `DistroMessage.payload`.

use serde::{Deserialize, Serialize};

use crate::naming::model::{Instance, ServiceKey};

/// One client's whole ephemeral publication at a revision of its owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientCopy {
    /// The client's id on its owner (`c<conn>` or `b<ip:port>`).
    pub id: String,
    /// The owner's revision of this client; higher is newer.
    pub revision: u64,
    /// Instances per service (never empty: a client without instances is a removal).
    pub services: Vec<(ServiceKey, Vec<Instance>)>,
}

/// A client that no longer publishes anything, at the owner's revision of that change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Removal {
    /// The client's id on its owner.
    pub id: String,
    /// The owner's revision of the removal.
    pub revision: u64,
}

/// Who sends: the owner's member address and the incarnation of its process. A restarted
/// owner has a new incarnation, so copies of its previous clients are dropped at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The owner's member address (`host:http_port`).
    pub owner: String,
    /// Random at every start of the owner.
    pub incarnation: u64,
}

/// Changed and removed clients of one owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncBatch {
    /// The owner.
    pub origin: Origin,
    /// New or changed clients.
    pub upserts: Vec<ClientCopy>,
    /// Clients that are gone.
    pub removals: Vec<Removal>,
}

/// Every client an owner holds, with revisions: the receiver renews what matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verify {
    /// The owner.
    pub origin: Origin,
    /// `(id, revision)` of every client the owner holds.
    pub clients: Vec<(String, u64)>,
}

/// The clients of a [`Verify`] the receiver lacks or holds at another revision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifyReply {
    /// Ids the owner should sync to the receiver.
    pub missing: Vec<String>,
}

/// Encodes a message.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    postcard::to_stdvec(msg).unwrap_or_default()
}

/// Decodes a message; a malformed payload is an error, never a panic.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("malformed Distro message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let key = ServiceKey::new("", "G", "svc");
        let inst = Instance {
            metadata: std::collections::BTreeMap::from([("k".to_string(), "v".to_string())]).into(),
            ..Instance::sample("10.0.0.1", 80)
        };
        let batch = SyncBatch {
            origin: Origin { owner: "127.0.0.1:8848".into(), incarnation: 7 },
            upserts: vec![ClientCopy { id: "c1".into(), revision: 3, services: vec![(key, vec![inst])] }],
            removals: vec![Removal { id: "c2".into(), revision: 4 }],
        };
        let bytes = encode(&batch);
        assert_eq!(decode::<SyncBatch>(&bytes).unwrap(), batch);
        assert!(decode::<SyncBatch>(&bytes[..bytes.len() / 2]).is_err());
        assert!(decode::<Verify>(b"\xff\xff\xff").is_err());
    }
}
