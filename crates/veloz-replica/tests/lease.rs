//! The lease against a real nats-server (1 node, JetStream, loopback): taking it, expiry
//! observed without renewals, fencing of the old holder, a release, and a renewal whose
//! answer was lost but which landed (the holder must not fence itself).
//!
//! Skipped, saying why, only when nats-server is not installed (`make tools` installs it).

#[path = "../../../tests/replication/cluster.rs"]
mod cluster;

use std::time::{Duration, Instant};

use bytes::Bytes;
use veloz_config::ReplicationConfig;
use veloz_replica::lease::Renewal;
use veloz_replica::{Nats, Watch};

const TTL: Duration = Duration::from_millis(600);

#[test]
fn the_lease_is_taken_once_expires_unrenewed_and_fences_its_old_holder() {
    let dir = std::env::temp_dir().join(format!("veloz-lease-{}", std::process::id()));
    let nats = match cluster::NatsCluster::start(&dir, 1) {
        Ok(c) => c,
        Err(e) if e.contains("make tools") => {
            eprintln!("skipped: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let config = ReplicationConfig {
        urls: nats.urls(),
        engine: "leasetest".into(),
        replicas: 1,
        ..ReplicationConfig::default()
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = Nats::connect(&config).await.unwrap();
        let bucket = client.lease_bucket("leases").await.unwrap();
        let watch = |node: &str| Watch::new(bucket.clone(), "leases", "leasetest", node, TTL);

        // Free: taken at once, epoch 1.
        let mut a = watch("a")
            .try_take()
            .await
            .unwrap()
            .expect("a free lease is taken");
        assert_eq!((a.value.node.as_str(), a.value.epoch), ("a", 1));

        // Held and renewed: b never takes it.
        let mut wb = watch("b");
        let began = Instant::now();
        while began.elapsed() < TTL * 2 {
            assert!(
                wb.try_take().await.unwrap().is_none(),
                "taken while renewed"
            );
            assert!(matches!(a.renew().await, Renewal::Renewed));
            tokio::time::sleep(TTL / 6).await;
        }
        assert_eq!(wb.holder.as_ref().map(|h| h.node.as_str()), Some("a"));

        // A renewal that landed but whose answer was lost: the next one finds the entry
        // still a's at a later revision, and goes on.
        let entry = bucket.entry("leasetest").await.unwrap().unwrap();
        bucket
            .update("leasetest", entry.value.clone(), entry.revision)
            .await
            .unwrap();
        assert!(
            matches!(a.renew().await, Renewal::Renewed),
            "a fenced itself"
        );

        // Not renewed for TTL: b takes it (epoch 2), and a's next renewal is refused.
        let began = Instant::now();
        let mut b = loop {
            if let Some(l) = wb.try_take().await.unwrap() {
                break l;
            }
            assert!(
                began.elapsed() < TTL * 3,
                "b did not take an unrenewed lease"
            );
            tokio::time::sleep(TTL / 10).await;
        };
        assert!(
            began.elapsed() >= TTL,
            "taken before it expired: {:?}",
            began.elapsed()
        );
        assert_eq!((b.value.node.as_str(), b.value.epoch), ("b", 2));
        match a.renew().await {
            Renewal::Lost(why) => assert!(why.contains("node b (epoch 2)"), "{why}"),
            other => panic!("a was not fenced: {other:?}"),
        }

        // Released at a clean stop: c takes it at once.
        b.release().await.unwrap();
        let c = watch("c")
            .try_take()
            .await
            .unwrap()
            .expect("a released lease is free");
        assert_eq!((c.value.node.as_str(), c.value.epoch), ("c", 3));

        // A garbled entry is refused with a message naming the bucket and key.
        let entry = bucket.entry("leasetest").await.unwrap().unwrap();
        bucket
            .update("leasetest", Bytes::from_static(b"{"), entry.revision)
            .await
            .unwrap();
        let e = watch("d").try_take().await.unwrap_err().to_string();
        assert!(e.contains("leases") && e.contains("leasetest"), "{e}");
    });
    drop(nats);
    let _ = std::fs::remove_dir_all(&dir);
}
