//! Kubeconfig files (JSON, which kubectl, helm and client-go read as YAML) and clients built from them.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

use crate::error::{Error, Result};

/// How a kubeconfig user authenticates.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A client certificate and key (PEM).
    ClientCert {
        /// Certificate PEM.
        cert_pem: String,
        /// Key PEM.
        key_pem: String,
    },
    /// A bearer token (e.g. a ServiceAccount token from the TokenRequest API).
    Token(String),
}

fn b64(data: &str) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = data.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes a single-context kubeconfig for `server` with the CA embedded, using `credential`; the context is named
/// `cairn-test` and namespace `namespace`.
pub fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca_pem: &str,
    user: &str,
    credential: &Credential,
    namespace: &str,
) -> Result<()> {
    let user_entry = match credential {
        Credential::ClientCert { cert_pem, key_pem } => {
            json!({"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)})
        }
        Credential::Token(token) => json!({ "token": token }),
    };
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cairn-test", "cluster": {
            "server": server, "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": user, "user": user_entry}],
        "contexts": [{"name": "cairn-test", "context": {"cluster": "cairn-test", "user": user, "namespace": namespace}}],
        "current-context": "cairn-test",
        "preferences": {},
    });
    let text = serde_json::to_string_pretty(&doc).map_err(|source| Error::Json { action: "kubeconfig", source })?;
    std::fs::write(path, text).map_err(|e| Error::io("write kubeconfig", path, e))
}

/// A kube client for the current context of the kubeconfig file at `path`.
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client> {
    let kubeconfig =
        Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig { path: path.to_path_buf(), source })?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|source| Error::Kubeconfig { path: path.to_path_buf(), source })?;
    kube::Client::try_from(config).map_err(|source| Error::kube(format!("client from {}", path.display()), source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(b64(""), "");
        assert_eq!(b64("f"), "Zg==");
        assert_eq!(b64("fo"), "Zm8=");
        assert_eq!(b64("foo"), "Zm9v");
        assert_eq!(b64("foobar"), "Zm9vYmFy");
    }

    #[test]
    fn kubeconfig_round_trips_through_kube() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kc");
        write_kubeconfig(&path, "https://127.0.0.1:1", "CA", "u", &Credential::Token("t".into()), "ns").unwrap();
        let kc = Kubeconfig::read_from(&path).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("cairn-test"));
        let user = kc.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(user.token.is_some());
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.certificate_authority_data.as_deref(), Some("Q0E="));
    }
}
