//! Step 2 of a reconcile: check a RegistryCluster and resolve its defaults into a
//! [`ValidatedCluster`]. Pure. The schema already rejects most mistakes; these checks repeat the
//! ones the builders rely on, so an object that slipped past an older CRD cannot produce broken
//! pods.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

use crate::crd::{RegistryCluster, RegistryClusterSpec};
use crate::names::{ClusterNames, LABEL_INSTANCE, LABEL_MANAGED_BY, LABEL_NAME};
use crate::{Error, Result};

/// Environment variables the operator sets on the node container; users may not set them.
pub const RESERVED_ENV: &[&str] = &[
    "POD_NAME",
    "POD_NAMESPACE",
    "POD_IP",
    "CAIRN_MEMBERS",
    "CAIRN_PEER_DOMAIN",
    "CAIRN_ADVERTISE_HOST",
    "CAIRN_AUTO_JOIN",
    "CAIRN_DATA_DIR",
    "CAIRN_HTTP_PORT",
    "CAIRN_BIND",
    "CAIRN_NAMESPACE",
    "CAIRN_BOOTSTRAP_EXPECT",
];

/// A RegistryCluster that passed validation, with defaults resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidatedCluster {
    /// Names and addresses.
    pub names: ClusterNames,
    /// The spec.
    pub spec: RegistryClusterSpec,
    /// Node image (spec or operator default).
    pub image: String,
    /// Controller owner reference for every owned object.
    pub owner: OwnerReference,
    /// `metadata.generation`.
    pub generation: Option<i64>,
}

/// Validates `rc`; `default_image` is used when the spec names no image.
pub fn validate(rc: &RegistryCluster, default_image: &str) -> Result<ValidatedCluster> {
    let name = rc.metadata.name.clone().ok_or(Error::MissingField("metadata.name"))?;
    let namespace = rc.metadata.namespace.clone().ok_or(Error::MissingField("metadata.namespace"))?;
    let owner = rc.controller_owner_ref(&()).ok_or(Error::MissingField("metadata.uid"))?;
    let spec = &rc.spec;
    let mut errs = Vec::new();
    if name.len() > 52 {
        errs.push("metadata.name must be at most 52 characters".to_owned());
    }
    if !(1..=9).contains(&spec.replicas) || spec.replicas % 2 == 0 {
        errs.push(format!("replicas must be odd, 1 to 9 (got {})", spec.replicas));
    }
    if !valid_quantity(&spec.storage.size) {
        errs.push(format!("storage.size {:?} is not a quantity such as 1Gi", spec.storage.size));
    }
    if !(1024..=64534).contains(&spec.ports.http) {
        errs.push(format!("ports.http must be within 1024..=64534 (got {})", spec.ports.http));
    }
    if spec.cluster_domain.is_empty() {
        errs.push("clusterDomain must not be empty".to_owned());
    }
    for k in spec.node.extra_env.keys() {
        let shape = k.strip_prefix("CAIRN_").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        });
        if !shape {
            errs.push(format!("node.extraEnv key {k:?} must look like CAIRN_<FLAG>"));
        } else if RESERVED_ENV.contains(&k.as_str()) {
            errs.push(format!("node.extraEnv must not set {k}: the operator sets it"));
        }
    }
    for e in &spec.pod_template.env {
        if RESERVED_ENV.contains(&e.name.as_str()) {
            errs.push(format!("podTemplate.env must not set {}: the operator sets it", e.name));
        }
    }
    for l in [LABEL_NAME, LABEL_INSTANCE, LABEL_MANAGED_BY] {
        if spec.pod_template.labels.contains_key(l) {
            errs.push(format!("podTemplate.labels must not set {l}"));
        }
    }
    let image = spec.image.clone().unwrap_or_else(|| default_image.to_owned());
    if image.is_empty() {
        errs.push("image must not be empty".to_owned());
    }
    if !errs.is_empty() {
        return Err(Error::InvalidSpec(errs));
    }
    Ok(ValidatedCluster {
        names: ClusterNames {
            name,
            namespace,
            cluster_domain: spec.cluster_domain.clone(),
            http_port: spec.ports.http,
        },
        spec: spec.clone(),
        image,
        owner,
        generation: rc.metadata.generation,
    })
}

/// A Kubernetes quantity as the schema's pattern accepts it.
fn valid_quantity(s: &str) -> bool {
    let num_end = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, suffix) = s.split_at(num_end);
    let num_ok = !num.is_empty() && !num.starts_with('.') && !num.ends_with('.') && num.matches('.').count() <= 1;
    num_ok && ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E"].contains(&suffix)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::EnvVar;

    /// A RegistryCluster as the API server would hand it over (name, namespace, uid set).
    pub(crate) fn cluster(name: &str, spec: RegistryClusterSpec) -> RegistryCluster {
        let mut rc = RegistryCluster::new(name, spec);
        rc.metadata.namespace = Some("ns".into());
        rc.metadata.uid = Some("uid-1".into());
        rc.metadata.generation = Some(1);
        rc
    }

    #[test]
    fn defaults_resolve() {
        let v = validate(&cluster("reg", RegistryClusterSpec::default()), "img:1").unwrap();
        assert_eq!(v.image, "img:1");
        assert_eq!(v.names.name, "reg");
        assert_eq!(v.names.namespace, "ns");
        assert_eq!(v.names.http_port, 8848);
        assert_eq!(v.owner.uid, "uid-1");
        assert_eq!(v.owner.controller, Some(true));
        assert_eq!(v.owner.kind, "RegistryCluster");
        assert_eq!(v.owner.api_version, "cairn.dev/v1alpha1");
    }

    #[test]
    fn rejects_what_the_builders_rely_on() {
        type Case = (&'static str, fn(&mut RegistryClusterSpec), &'static str);
        let cases: &[Case] = &[
            ("even replicas", |s| s.replicas = 4, "replicas must be odd"),
            ("zero replicas", |s| s.replicas = 0, "replicas must be odd"),
            ("too many", |s| s.replicas = 11, "replicas must be odd"),
            ("bad size", |s| s.storage.size = "lots".into(), "storage.size"),
            ("bad size 2", |s| s.storage.size = "1.Gi".into(), "storage.size"),
            ("port", |s| s.ports.http = 80, "ports.http"),
            ("extra env shape", |s| drop(s.node.extra_env.insert("FOO".into(), "1".into())), "CAIRN_<FLAG>"),
            (
                "extra env reserved",
                |s| drop(s.node.extra_env.insert("CAIRN_MEMBERS".into(), "x".into())),
                "operator sets it",
            ),
            (
                "pod env reserved",
                |s| s.pod_template.env.push(EnvVar { name: "POD_IP".into(), ..Default::default() }),
                "podTemplate.env",
            ),
            ("label", |s| drop(s.pod_template.labels.insert(LABEL_INSTANCE.into(), "x".into())), "podTemplate.labels"),
            ("image", |s| s.image = Some(String::new()), "image"),
        ];
        for (what, mutate, want) in cases {
            let mut spec = RegistryClusterSpec::default();
            mutate(&mut spec);
            let err = validate(&cluster("reg", spec), "img").unwrap_err().to_string();
            assert!(err.contains(want), "{what}: {err}");
        }
        let long = "x".repeat(53);
        assert!(validate(&cluster(&long, RegistryClusterSpec::default()), "img").is_err());
    }

    #[test]
    fn accepts_valid_variants() {
        for size in ["1Gi", "500Mi", "10", "1.5Gi", "2T"] {
            assert!(valid_quantity(size), "{size}");
        }
        let mut spec = RegistryClusterSpec { replicas: 5, ..Default::default() };
        spec.node.extra_env.insert("CAIRN_HEALTH_CHECK_INTERVAL_MS".into(), "1000".into());
        spec.pod_template.labels.insert("team".into(), "a".into());
        validate(&cluster("reg", spec), "img").unwrap();
    }

    #[test]
    fn missing_uid_is_an_error() {
        let mut rc = cluster("reg", RegistryClusterSpec::default());
        rc.metadata.uid = None;
        assert!(matches!(validate(&rc, "img"), Err(Error::MissingField(_))));
    }
}
