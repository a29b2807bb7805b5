use super::*;

fn registry() -> Registry {
    let metrics = Metrics::new(prometheus::Registry::new()).unwrap();
    let settings = Settings {
        beat_timeout: Duration::from_millis(15_000),
        delete_timeout: Duration::from_millis(30_000),
        empty_service_clean: Duration::from_millis(60_000),
    };
    Registry::new(settings, metrics, Arc::new(DirtySet::default()))
}

fn inst(ip: &str, port: u16) -> Instance {
    Instance::sample(ip, port)
}

#[test]
fn publish_replaces_per_client_and_client_gone_removes() {
    let r = registry();
    let k = ServiceKey::new("", "", "svc");
    let c1 = ClientId::Conn(1);
    let c2 = ClientId::Conn(2);
    r.publish(&c1, &k, vec![inst("10.0.0.1", 80)]);
    r.publish(&c1, &k, vec![inst("10.0.0.2", 80)]);
    r.publish(&c2, &k, vec![inst("10.0.0.3", 80)]);
    let ips: Vec<_> = r.query(&k, &[], false).unwrap().hosts.into_iter().map(|i| i.ip.clone()).collect();
    assert_eq!(ips, vec!["10.0.0.2", "10.0.0.3"]);
    assert_eq!(r.counts().instances, 2);
    r.subscribe(2, &k, "");
    assert_eq!(r.counts().subscribers, 1);
    r.client_gone(&c1);
    assert_eq!(r.query(&k, &[], false).unwrap().hosts.len(), 1);
    r.client_gone(&c2);
    assert_eq!(r.counts().instances, 0);
    assert_eq!(r.counts().subscribers, 0);
    assert_eq!(r.counts().clients, 0);
}

#[test]
fn changes_mark_dirty_once_and_only_with_listeners() {
    let r = registry();
    let k = ServiceKey::new("public", "g", "svc");
    r.publish(&ClientId::Conn(1), &k, vec![inst("a", 1)]);
    assert!(r.dirty().drain().is_empty(), "nobody listens: no push work");
    r.subscribe(9, &k, "");
    r.publish(&ClientId::Conn(1), &k, vec![inst("a", 2)]);
    r.publish(&ClientId::Conn(2), &k, vec![inst("b", 1)]);
    let d = r.dirty().drain();
    assert_eq!(d.len(), 1);
    assert!(r.dirty().drain().is_empty());
    r.unsubscribe(9, &k);
    r.watch(&k, true);
    r.publish(&ClientId::Conn(2), &k, vec![]);
    assert_eq!(r.dirty().drain().len(), 1, "a UDP watcher counts as a listener");
}

#[test]
fn beat_expiry_marks_unhealthy_then_removes() {
    let r = registry();
    let k = ServiceKey::new("", "", "svc");
    let c = ClientId::Beat("10.0.0.1:80".into());
    r.upsert(&c, &k, inst("10.0.0.1", 80));
    let t0 = Instant::now();
    r.sweep(t0 + Duration::from_secs(16));
    let h = r.query(&k, &[], false).unwrap().hosts;
    assert_eq!(h.len(), 1);
    assert!(!h[0].healthy);
    assert!(r.beat(&c, &k, "10.0.0.1", 80, "DEFAULT"));
    assert!(r.query(&k, &[], false).unwrap().hosts[0].healthy);
    r.sweep(Instant::now() + Duration::from_secs(31));
    assert!(r.query(&k, &[], false).unwrap().hosts.is_empty());
    assert!(!r.beat(&c, &k, "10.0.0.1", 80, "DEFAULT"));
    assert_eq!(r.counts().clients, 0);
}

#[test]
fn idle_services_are_cleaned_but_explicit_ones_stay() {
    let r = registry();
    let implicit = ServiceKey::new("", "", "a");
    let explicit = ServiceKey::new("", "", "b");
    r.publish(&ClientId::Conn(1), &implicit, vec![inst("x", 1)]);
    r.publish(&ClientId::Conn(1), &implicit, vec![]);
    r.set_service_meta(&explicit, Some(ServiceMeta::default()));
    r.sweep(Instant::now() + Duration::from_secs(61));
    assert!(r.query(&implicit, &[], false).is_none());
    assert!(r.query(&explicit, &[], false).is_some());
}

#[test]
fn list_services_pages_by_group() {
    let r = registry();
    for n in ["c", "a", "b"] {
        r.publish(&ClientId::Conn(1), &ServiceKey::new("", "G", n), vec![inst("x", 1)]);
    }
    r.publish(&ClientId::Conn(1), &ServiceKey::new("", "H", "z"), vec![inst("x", 1)]);
    let (count, page) = r.list_services(&ServiceKey::new("", "G", ""), 1, 2);
    assert_eq!(count, 3);
    assert_eq!(page, vec!["a", "b"]);
    let (_, page) = r.list_services(&ServiceKey::new("", "G", ""), 2, 2);
    assert_eq!(page, vec!["c"]);
}

#[test]
fn instances_of_a_service_share_equal_cluster_names_and_metadata() {
    let r = registry();
    let k = ServiceKey::new("", "", "shared");
    let meta: Metadata = std::collections::BTreeMap::from([("k".to_string(), "v".to_string())]).into();
    let with = |ip: &str, cluster: &str| Instance { cluster: cluster.into(), metadata: meta.clone(), ..inst(ip, 80) };
    r.publish(&ClientId::Conn(1), &k, vec![with("10.0.0.1", "A")]);
    r.publish(&ClientId::Conn(2), &k, vec![with("10.0.0.2", "A")]);
    r.publish(&ClientId::Conn(3), &k, vec![with("10.0.0.3", "B")]);
    let hosts = r.query(&k, &[], false).unwrap().hosts;
    assert!(Arc::ptr_eq(&hosts[0].cluster, &hosts[1].cluster), "equal cluster names share one allocation");
    assert_eq!(&*hosts[2].cluster, "B");
    assert_eq!(hosts[0].metadata, hosts[2].metadata);
}
