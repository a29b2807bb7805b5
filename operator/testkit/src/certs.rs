//! The PKI of one control plane: a CA, the apiserver serving certificate, an admin client certificate in
//! `system:masters` and the service-account signing key. ECDSA P-256 throughout (generated with rcgen).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};

use crate::error::{Error, Result};

/// Files of the generated PKI (all PEM).
#[derive(Debug, Clone)]
pub struct Pki {
    /// CA certificate (client CA and serving CA).
    pub ca_cert: PathBuf,
    /// CA certificate as PEM text (embedded in kubeconfigs).
    pub ca_pem: String,
    /// kube-apiserver serving certificate (SANs: 127.0.0.1, localhost, kubernetes.default.svc...).
    pub serving_cert: PathBuf,
    /// Its key.
    pub serving_key: PathBuf,
    /// Admin client certificate: CN `cairn-test-admin`, O `system:masters`.
    pub admin_cert_pem: String,
    /// Its key.
    pub admin_key_pem: String,
    /// Service-account token signing key (private).
    pub sa_key: PathBuf,
    /// Service-account token verification key (public).
    pub sa_pub: PathBuf,
}

/// The admin user name in the client certificate.
pub const ADMIN_USER: &str = "cairn-test-admin";

fn cert_err(what: &'static str) -> impl FnOnce(rcgen::Error) -> Error {
    move |source| Error::Certificate { what, source }
}

fn base_params(sans: &[&str], cn: &str) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .map_err(cert_err("certificate parameters"))?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.not_before = date_time_ymd(2000, 1, 1);
    params.not_after = date_time_ymd(2200, 1, 1);
    Ok(params)
}

fn write(path: &Path, contents: &str) -> Result<()> {
    std::fs::write(path, contents).map_err(|e| Error::io("write", path, e))
}

impl Pki {
    /// Generates a fresh PKI and writes its files into `dir`.
    pub fn generate(dir: &Path) -> Result<Pki> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create dir", dir, e))?;

        let ca_key = KeyPair::generate().map_err(cert_err("CA key"))?;
        let mut ca_params = base_params(&[], "cairn-test-ca")?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca_params.self_signed(&ca_key).map_err(cert_err("CA certificate"))?;
        let issuer = Issuer::new(ca_params, ca_key);

        let serving_key = KeyPair::generate().map_err(cert_err("serving key"))?;
        let mut serving_params = base_params(
            &[
                "127.0.0.1",
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            "kube-apiserver",
        )?;
        serving_params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        serving_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving_params.signed_by(&serving_key, &issuer).map_err(cert_err("serving certificate"))?;

        let admin_key = KeyPair::generate().map_err(cert_err("admin key"))?;
        let mut admin_params = base_params(&[], ADMIN_USER)?;
        admin_params.distinguished_name.push(DnType::OrganizationName, "system:masters");
        admin_params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        admin_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let admin_cert = admin_params.signed_by(&admin_key, &issuer).map_err(cert_err("admin certificate"))?;

        let sa_key = KeyPair::generate().map_err(cert_err("service-account key"))?;

        let pki = Pki {
            ca_cert: dir.join("ca.crt"),
            ca_pem: ca_cert.pem(),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            admin_cert_pem: admin_cert.pem(),
            admin_key_pem: admin_key.serialize_pem(),
            sa_key: dir.join("sa.key"),
            sa_pub: dir.join("sa.pub"),
        };
        write(&pki.ca_cert, &pki.ca_pem)?;
        write(&pki.serving_cert, &serving_cert.pem())?;
        write(&pki.serving_key, &serving_key.serialize_pem())?;
        write(&pki.sa_key, &sa_key.serialize_pem())?;
        write(&pki.sa_pub, &sa_key.public_key_pem())?;
        write(&dir.join("admin.crt"), &pki.admin_cert_pem)?;
        write(&dir.join("admin.key"), &pki.admin_key_pem)?;
        Ok(pki)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(dir.path()).unwrap();
        for path in [&pki.ca_cert, &pki.serving_cert, &pki.serving_key, &pki.sa_key, &pki.sa_pub] {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN "), "{}: {text}", path.display());
        }
        assert!(std::fs::read_to_string(&pki.sa_pub).unwrap().contains("PUBLIC KEY"));
        assert!(pki.admin_key_pem.contains("PRIVATE KEY"));
        assert_ne!(pki.admin_cert_pem, pki.ca_pem);
    }
}
