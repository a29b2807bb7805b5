//! The RBAC rules the operator itself needs (documented in the README; the integration tests run
//! the operator under exactly these rules, so the documentation cannot drift from what it uses).

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_owned()]),
        resources: Some(resources.iter().map(|r| (*r).to_owned()).collect()),
        verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
        ..Default::default()
    }
}

/// Every rule the operator needs, with monitoring and leader election included.
pub fn operator_rules() -> Vec<PolicyRule> {
    vec![
        rule("cairn.dev", &["registryclusters"], &["get", "list", "watch"]),
        rule("cairn.dev", &["registryclusters/status"], &["patch"]),
        rule("apps", &["statefulsets"], &["get", "list", "watch", "create", "patch"]),
        rule("", &["pods"], &["get", "list", "watch", "delete"]),
        rule("", &["services", "configmaps", "serviceaccounts"], &["create", "patch"]),
        rule("", &["secrets"], &["get", "create", "patch"]),
        rule("rbac.authorization.k8s.io", &["roles", "rolebindings"], &["create", "patch"]),
        rule("policy", &["poddisruptionbudgets"], &["get", "create", "patch", "delete"]),
        rule("monitoring.coreos.com", &["servicemonitors"], &["get", "create", "patch", "delete"]),
        rule("events.k8s.io", &["events"], &["create", "patch"]),
        rule("coordination.k8s.io", &["leases"], &["get", "create", "update"]),
    ]
}

/// A ClusterRole named `name` with [`operator_rules`].
pub fn operator_cluster_role(name: &str) -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta { name: Some(name.to_owned()), ..Default::default() },
        rules: Some(operator_rules()),
        ..Default::default()
    }
}
