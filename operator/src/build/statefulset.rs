//! The StatefulSet: one pod per member, `OrderedReady` (pod-0 bootstraps alone; the operator adds
//! later pods), `OnDelete` updates (the operator rolls pods itself, leader last), a data claim per
//! pod, probes wired to the node's readiness (a caught-up Raft member).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMapEnvSource, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    EnvVarSource, HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe, SeccompProfile,
    SecurityContext, Volume, VolumeMount, VolumeResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::owned_meta;
use crate::config::Addressing;
use crate::names::{CONFIG_HASH_ANNOTATION, CONTAINER, DATA_DIR, DATA_MOUNT, DATA_VOLUME, LABEL_MANAGED_BY, MANAGER};
use crate::validate::ValidatedCluster;

/// Readiness path: 200 only for a caught-up Raft member with a known leader.
pub const READINESS_PATH: &str = "/nacos/v1/console/health/readiness";
/// Liveness path: 200 while the process serves HTTP.
pub const LIVENESS_PATH: &str = "/nacos/v1/console/health/liveness";
/// User and group the node runs as.
pub const RUN_AS: i64 = 65532;

/// StatefulSet replicas for a cluster whose StatefulSet does not exist (yet): 1 for a new cluster
/// (pod-0 bootstraps, the operator adds the rest one by one); when pods of the cluster already
/// exist (the StatefulSet was deleted with orphans), enough to keep them all.
pub fn initial_replicas(existing_pod_ordinals: impl IntoIterator<Item = i32>) -> i32 {
    existing_pod_ordinals.into_iter().map(|o| o + 1).max().unwrap_or(1).max(1)
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.into(), value: Some(value.into()), ..Default::default() }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector { field_path: path.into(), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The node container's environment: downward API first (later entries refer to them), then the
/// operator-owned `CAIRN_*` settings, then the user's `podTemplate.env`.
pub fn container_env(vc: &ValidatedCluster, addressing: Addressing) -> Vec<EnvVar> {
    let mut out = vec![
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        field_env("POD_IP", "status.podIP"),
        env("CAIRN_BIND", "0.0.0.0"),
        env("CAIRN_HTTP_PORT", vc.spec.ports.http.to_string()),
        env("CAIRN_DATA_DIR", DATA_DIR),
        env("CAIRN_MEMBERS", format!("k8s:{}", vc.names.selector())),
    ];
    match addressing {
        Addressing::Dns => {
            let domain = vc.names.peer_domain();
            out.push(env("CAIRN_PEER_DOMAIN", domain.clone()));
            out.push(env("CAIRN_ADVERTISE_HOST", format!("$(POD_NAME).{domain}")));
        }
        Addressing::Ip => out.push(env("CAIRN_ADVERTISE_HOST", "$(POD_IP)")),
    }
    out.push(env("CAIRN_AUTO_JOIN", "false"));
    out.push(env("CAIRN_BOOTSTRAP_EXPECT", "1"));
    out.extend(vc.spec.pod_template.env.iter().cloned());
    out
}

fn http_probe(path: &str, period: i32, timeout: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String("http".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(timeout),
        failure_threshold: Some(failures),
        success_threshold: Some(1),
        ..Default::default()
    }
}

fn container(vc: &ValidatedCluster, addressing: Addressing) -> Container {
    let p = vc.spec.ports;
    let port = |name: &str, n: i32| ContainerPort {
        name: Some(name.into()),
        container_port: n,
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    Container {
        name: CONTAINER.into(),
        image: Some(vc.image.clone()),
        image_pull_policy: vc.spec.image_pull_policy.map(|p| p.as_str().to_owned()),
        ports: Some(vec![port("http", p.http), port("grpc", p.grpc()), port("raft", p.raft())]),
        env: Some(container_env(vc, addressing)),
        env_from: Some(vec![EnvFromSource {
            config_map_ref: Some(ConfigMapEnvSource { name: vc.names.config_map(), optional: Some(false) }),
            ..Default::default()
        }]),
        resources: vc.spec.resources.clone(),
        // Startup: up to 5 minutes to open the HTTP port (log replay); liveness takes over afterwards.
        startup_probe: Some(http_probe(LIVENESS_PATH, 5, 3, 60)),
        liveness_probe: Some(http_probe(LIVENESS_PATH, 10, 5, 6)),
        readiness_probe: Some(http_probe(READINESS_PATH, 5, 3, 2)),
        volume_mounts: Some(vec![
            VolumeMount { name: DATA_VOLUME.into(), mount_path: DATA_MOUNT.into(), ..Default::default() },
            VolumeMount { name: "tmp".into(), mount_path: "/tmp".into(), ..Default::default() },
        ]),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            read_only_root_filesystem: Some(true),
            run_as_non_root: Some(true),
            capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Default::default() }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Preferred spreading of members over nodes, used when the spec sets no affinity.
fn default_affinity(vc: &ValidatedCluster) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                weight: 100,
                pod_affinity_term: PodAffinityTerm {
                    label_selector: Some(LabelSelector {
                        match_labels: Some(vc.names.selector_labels()),
                        ..Default::default()
                    }),
                    topology_key: "kubernetes.io/hostname".into(),
                    ..Default::default()
                },
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod_template(vc: &ValidatedCluster, addressing: Addressing, config_hash: &str) -> PodTemplateSpec {
    let t = &vc.spec.pod_template;
    let mut labels = t.labels.clone();
    labels.extend(vc.names.selector_labels());
    labels.insert(LABEL_MANAGED_BY.into(), MANAGER.into());
    let mut annotations = t.annotations.clone();
    annotations.insert(CONFIG_HASH_ANNOTATION.into(), config_hash.into());
    let opt_map = |m: &BTreeMap<String, String>| (!m.is_empty()).then(|| m.clone());
    PodTemplateSpec {
        metadata: Some(ObjectMeta { labels: Some(labels), annotations: Some(annotations), ..Default::default() }),
        spec: Some(PodSpec {
            service_account_name: Some(vc.names.base().to_owned()),
            automount_service_account_token: Some(true),
            // A Service named like a CAIRN_* flag would otherwise inject e.g. CAIRN_PORT into the pods.
            enable_service_links: Some(false),
            termination_grace_period_seconds: Some(t.termination_grace_period_seconds),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(RUN_AS),
                run_as_group: Some(RUN_AS),
                fs_group: Some(RUN_AS),
                fs_group_change_policy: Some("OnRootMismatch".into()),
                seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".into(), ..Default::default() }),
                ..Default::default()
            }),
            affinity: Some(t.affinity.clone().unwrap_or_else(|| default_affinity(vc))),
            node_selector: opt_map(&t.node_selector),
            tolerations: (!t.tolerations.is_empty()).then(|| t.tolerations.clone()),
            priority_class_name: t.priority_class_name.clone(),
            image_pull_secrets: (!vc.spec.image_pull_secrets.is_empty()).then(|| vc.spec.image_pull_secrets.clone()),
            containers: vec![container(vc, addressing)],
            volumes: Some(vec![Volume {
                name: "tmp".into(),
                empty_dir: Some(EmptyDirVolumeSource {
                    size_limit: Some(Quantity("64Mi".into())),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

fn claim_template(vc: &ValidatedCluster) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.into()),
            labels: Some(vc.names.selector_labels()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: vc.spec.storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(vc.spec.storage.size.clone()))])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The StatefulSet `<name>` with `replicas` pods; `config_hash` is the node ConfigMap's hash.
pub fn statefulset(vc: &ValidatedCluster, addressing: Addressing, replicas: i32, config_hash: &str) -> StatefulSet {
    let retention = &vc.spec.storage.retention;
    StatefulSet {
        metadata: owned_meta(vc, vc.names.base().to_owned(), "registry"),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            service_name: Some(vc.names.headless()),
            selector: LabelSelector { match_labels: Some(vc.names.selector_labels()), ..Default::default() },
            pod_management_policy: Some("OrderedReady".into()),
            update_strategy: Some(StatefulSetUpdateStrategy { type_: Some("OnDelete".into()), ..Default::default() }),
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some(retention.when_deleted.as_str().into()),
                when_scaled: Some(retention.when_scaled.as_str().into()),
            }),
            revision_history_limit: Some(10),
            template: pod_template(vc, addressing, config_hash),
            volume_claim_templates: Some(vec![claim_template(vc)]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::tests::vc;
    use crate::crd::{RegistryClusterSpec, RetentionPolicy};
    use k8s_openapi::api::core::v1::Toleration;

    fn env_map(c: &Container) -> BTreeMap<String, Option<String>> {
        c.env.as_ref().unwrap().iter().map(|e| (e.name.clone(), e.value.clone())).collect()
    }

    #[test]
    fn statefulset_shape() {
        let sts = statefulset(&vc(RegistryClusterSpec::default()), Addressing::Dns, 1, "h1");
        let s = sts.spec.as_ref().unwrap();
        assert_eq!(sts.metadata.name.as_deref(), Some("reg"));
        assert_eq!(s.replicas, Some(1));
        assert_eq!(s.service_name.as_deref(), Some("reg-headless"));
        assert_eq!(s.pod_management_policy.as_deref(), Some("OrderedReady"));
        assert_eq!(s.update_strategy.as_ref().unwrap().type_.as_deref(), Some("OnDelete"));
        let r = s.persistent_volume_claim_retention_policy.as_ref().unwrap();
        assert_eq!((r.when_deleted.as_deref(), r.when_scaled.as_deref()), (Some("Retain"), Some("Retain")));
        let t = &s.template;
        let labels = t.metadata.as_ref().unwrap().labels.as_ref().unwrap();
        for (k, v) in s.selector.match_labels.as_ref().unwrap() {
            assert_eq!(labels.get(k), Some(v), "template carries the selector label {k}");
        }
        assert_eq!(t.metadata.as_ref().unwrap().annotations.as_ref().unwrap()[CONFIG_HASH_ANNOTATION], "h1");
        let pod = t.spec.as_ref().unwrap();
        assert_eq!(pod.service_account_name.as_deref(), Some("reg"));
        assert_eq!(pod.enable_service_links, Some(false));
        assert_eq!(pod.termination_grace_period_seconds, Some(30));
        assert_eq!(pod.security_context.as_ref().unwrap().run_as_non_root, Some(true));
        assert!(pod.affinity.as_ref().unwrap().pod_anti_affinity.is_some());
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("cairn/cairn-node:test"));
        let ports: Vec<_> = c.ports.as_ref().unwrap().iter().map(|p| p.container_port).collect();
        assert_eq!(ports, [8848, 9848, 9849]);
        let rp = c.readiness_probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(rp.path.as_deref(), Some(READINESS_PATH));
        let lp = c.liveness_probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(lp.path.as_deref(), Some(LIVENESS_PATH));
        assert_eq!(c.security_context.as_ref().unwrap().allow_privilege_escalation, Some(false));
        assert_eq!(c.env_from.as_ref().unwrap()[0].config_map_ref.as_ref().unwrap().name, "reg-config");
        let mount = &c.volume_mounts.as_ref().unwrap()[0];
        assert_eq!((mount.name.as_str(), mount.mount_path.as_str()), ("data", DATA_MOUNT));
        let claim = &s.volume_claim_templates.as_ref().unwrap()[0];
        let req = claim.spec.as_ref().unwrap().resources.as_ref().unwrap().requests.as_ref().unwrap();
        assert_eq!(req["storage"].0, "1Gi");
    }

    #[test]
    fn env_per_addressing_mode() {
        type Case = (Addressing, &'static [(&'static str, Option<&'static str>)], &'static [&'static str]);
        let cases: [Case; 2] = [
            (
                Addressing::Dns,
                &[
                    ("CAIRN_MEMBERS", Some("k8s:app.kubernetes.io/name=cairn,app.kubernetes.io/instance=reg")),
                    ("CAIRN_PEER_DOMAIN", Some("reg-headless.ns.svc.cluster.local")),
                    ("CAIRN_ADVERTISE_HOST", Some("$(POD_NAME).reg-headless.ns.svc.cluster.local")),
                    ("CAIRN_AUTO_JOIN", Some("false")),
                    ("CAIRN_DATA_DIR", Some(DATA_DIR)),
                    ("CAIRN_HTTP_PORT", Some("8848")),
                    ("POD_NAME", None),
                    ("POD_NAMESPACE", None),
                ],
                &[],
            ),
            (
                Addressing::Ip,
                &[
                    ("CAIRN_MEMBERS", Some("k8s:app.kubernetes.io/name=cairn,app.kubernetes.io/instance=reg")),
                    ("CAIRN_ADVERTISE_HOST", Some("$(POD_IP)")),
                    ("CAIRN_AUTO_JOIN", Some("false")),
                ],
                &["CAIRN_PEER_DOMAIN"],
            ),
        ];
        for (mode, want, absent) in cases {
            let sts = statefulset(&vc(RegistryClusterSpec::default()), mode, 1, "h");
            let c = &sts.spec.unwrap().template.spec.unwrap().containers[0];
            let env = env_map(c);
            for (k, v) in want {
                assert_eq!(env.get(*k).cloned(), Some(v.map(str::to_owned)), "{mode:?} {k}");
            }
            for k in absent {
                assert!(!env.contains_key(*k), "{mode:?} {k}");
            }
            // $(VAR) references resolve only to variables defined earlier.
            let names: Vec<_> = c.env.as_ref().unwrap().iter().map(|e| e.name.as_str()).collect();
            let adv = names.iter().position(|n| *n == "CAIRN_ADVERTISE_HOST").unwrap();
            assert!(names.iter().position(|n| *n == "POD_NAME").unwrap() < adv);
            assert!(names.iter().position(|n| *n == "POD_IP").unwrap() < adv);
        }
    }

    #[test]
    fn overrides_are_merged() {
        let mut spec = RegistryClusterSpec::default();
        spec.pod_template.labels.insert("team".into(), "a".into());
        spec.pod_template.annotations.insert("note".into(), "x".into());
        spec.pod_template.node_selector.insert("disk".into(), "ssd".into());
        spec.pod_template.tolerations.push(Toleration { key: Some("k".into()), ..Default::default() });
        spec.pod_template.priority_class_name = Some("high".into());
        spec.pod_template.env.push(EnvVar {
            name: "CAIRN_LOG".into(),
            value: Some("debug".into()),
            ..Default::default()
        });
        spec.pod_template.termination_grace_period_seconds = 90;
        spec.storage.storage_class_name = Some("fast".into());
        spec.storage.size = "5Gi".into();
        spec.storage.retention.when_deleted = RetentionPolicy::Delete;
        spec.image = Some("my/img:2".into());
        let sts = statefulset(&vc(spec), Addressing::Dns, 3, "h");
        let s = sts.spec.unwrap();
        assert_eq!(s.replicas, Some(3));
        assert_eq!(s.persistent_volume_claim_retention_policy.unwrap().when_deleted.as_deref(), Some("Delete"));
        let claim = &s.volume_claim_templates.unwrap()[0];
        assert_eq!(claim.spec.as_ref().unwrap().storage_class_name.as_deref(), Some("fast"));
        let meta = s.template.metadata.unwrap();
        assert_eq!(meta.labels.unwrap()["team"], "a");
        assert_eq!(meta.annotations.unwrap()["note"], "x");
        let pod = s.template.spec.unwrap();
        assert_eq!(pod.node_selector.unwrap()["disk"], "ssd");
        assert_eq!(pod.tolerations.unwrap().len(), 1);
        assert_eq!(pod.priority_class_name.as_deref(), Some("high"));
        assert_eq!(pod.termination_grace_period_seconds, Some(90));
        let c = &pod.containers[0];
        assert_eq!(c.image.as_deref(), Some("my/img:2"));
        assert_eq!(c.env.as_ref().unwrap().last().unwrap().name, "CAIRN_LOG");
    }

    #[test]
    fn initial_replicas_keep_orphans() {
        assert_eq!(initial_replicas([]), 1);
        assert_eq!(initial_replicas([0]), 1);
        assert_eq!(initial_replicas([0, 1, 2]), 3);
        assert_eq!(initial_replicas([4]), 5);
    }
}
