//! ServiceAccount, Role and RoleBinding of the nodes: their `k8s:` member discovery lists and
//! watches the cluster's pods.

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};

use super::owned_meta;
use crate::validate::ValidatedCluster;

/// The nodes' ServiceAccount, `<name>`.
pub fn service_account(vc: &ValidatedCluster) -> ServiceAccount {
    ServiceAccount {
        metadata: owned_meta(vc, vc.names.base().to_owned(), "registry"),
        automount_service_account_token: Some(true),
        ..Default::default()
    }
}

/// Role `<name>-discovery`: `get,list,watch` on pods of the namespace.
pub fn discovery_role(vc: &ValidatedCluster) -> Role {
    Role {
        metadata: owned_meta(vc, vc.names.discovery_role(), "registry"),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["pods".into()]),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
            ..Default::default()
        }]),
    }
}

/// RoleBinding `<name>-discovery` of the Role to the ServiceAccount.
pub fn discovery_role_binding(vc: &ValidatedCluster) -> RoleBinding {
    RoleBinding {
        metadata: owned_meta(vc, vc.names.discovery_role(), "registry"),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: vc.names.discovery_role(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: vc.names.base().to_owned(),
            namespace: Some(vc.names.namespace.clone()),
            ..Default::default()
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::tests::vc;
    use crate::crd::RegistryClusterSpec;

    #[test]
    fn role_grants_exactly_pod_discovery() {
        let v = vc(RegistryClusterSpec::default());
        let role = discovery_role(&v);
        let rules = role.rules.unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].api_groups, Some(vec![String::new()]));
        assert_eq!(rules[0].resources, Some(vec!["pods".to_owned()]));
        assert_eq!(rules[0].verbs, ["get", "list", "watch"]);
        let rb = discovery_role_binding(&v);
        assert_eq!(rb.role_ref.name, "reg-discovery");
        let subj = &rb.subjects.unwrap()[0];
        assert_eq!((subj.kind.as_str(), subj.name.as_str()), ("ServiceAccount", "reg"));
        assert_eq!(subj.namespace.as_deref(), Some("ns"));
        assert_eq!(service_account(&v).metadata.name.as_deref(), Some("reg"));
    }
}
