//! The headless Service (stable pod DNS names; not-ready pods published, since a new member must be
//! reachable before it is ready) and the client Service.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::owned_meta;
use crate::validate::ValidatedCluster;

fn port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        ..Default::default()
    }
}

/// `<name>-headless`: ports http, grpc (P+1000), raft (P+1001); `publishNotReadyAddresses: true`.
pub fn headless_service(vc: &ValidatedCluster) -> Service {
    let p = vc.spec.ports;
    Service {
        metadata: owned_meta(vc, vc.names.headless(), "peers"),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(vc.names.selector_labels()),
            ports: Some(vec![port("http", p.http), port("grpc", p.grpc()), port("raft", p.raft())]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `<name>`: ClusterIP Service with http and grpc, ready members only.
pub fn client_service(vc: &ValidatedCluster) -> Service {
    let p = vc.spec.ports;
    Service {
        metadata: owned_meta(vc, vc.names.base().to_owned(), "client"),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(vc.names.selector_labels()),
            ports: Some(vec![port("http", p.http), port("grpc", p.grpc())]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::tests::vc;
    use crate::crd::RegistryClusterSpec;

    fn ports(s: &Service) -> Vec<(String, i32)> {
        s.spec.as_ref().unwrap().ports.as_ref().unwrap().iter().map(|p| (p.name.clone().unwrap(), p.port)).collect()
    }

    #[test]
    fn table() {
        let mut spec = RegistryClusterSpec::default();
        spec.ports.http = 9000;
        let v = vc(spec);
        let h = headless_service(&v);
        assert_eq!(h.metadata.name.as_deref(), Some("reg-headless"));
        let hs = h.spec.as_ref().unwrap();
        assert_eq!(hs.cluster_ip.as_deref(), Some("None"));
        assert_eq!(hs.publish_not_ready_addresses, Some(true));
        assert_eq!(ports(&h), [("http".into(), 9000), ("grpc".into(), 10000), ("raft".into(), 10001)]);
        let c = client_service(&v);
        assert_eq!(c.metadata.name.as_deref(), Some("reg"));
        assert_eq!(ports(&c), [("http".into(), 9000), ("grpc".into(), 10000)]);
        for s in [&h, &c] {
            let sel = s.spec.as_ref().unwrap().selector.as_ref().unwrap();
            assert_eq!(sel, &v.names.selector_labels());
        }
    }
}
