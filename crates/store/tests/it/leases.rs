//! Leases: one holder at a time, takeover only after expiry, a higher fencing token on every takeover, and a
//! stale holder that can no longer renew.

use chrono::Duration;
use crm_store::repo::leases;
use crm_testkit_db::{TestDatabase, on_every_backend};

use crate::support::migrated_store;

on_every_backend!(a_lease_has_one_holder_and_fences_stale_ones);

async fn a_lease_has_one_holder_and_fences_stale_ones(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let minute = Duration::minutes(1);
    let a = leases::acquire(&store, "bot-poll:1", "instance-a", minute)
        .await
        .unwrap()
        .expect("free lease");
    assert!(
        leases::acquire(&store, "bot-poll:1", "instance-b", minute)
            .await
            .unwrap()
            .is_none(),
        "held by a"
    );
    assert!(
        leases::renew(&store, "bot-poll:1", "instance-a", a, minute)
            .await
            .unwrap()
    );
    assert_eq!(
        leases::holder(&store, "bot-poll:1").await.unwrap().as_deref(),
        Some("instance-a")
    );
    // Another name is independent.
    assert!(
        leases::acquire(&store, "bot-poll:2", "instance-b", minute)
            .await
            .unwrap()
            .is_some()
    );

    // a stops renewing; its lease lapses and b takes over with a higher token; a is fenced off.
    let lapsed = leases::acquire(&store, "bot-poll:3", "instance-a", Duration::seconds(-1))
        .await
        .unwrap()
        .unwrap();
    let b = leases::acquire(&store, "bot-poll:3", "instance-b", minute)
        .await
        .unwrap()
        .expect("expired lease");
    assert!(b.fencing_token > lapsed.fencing_token);
    assert!(
        !leases::renew(&store, "bot-poll:3", "instance-a", lapsed, minute)
            .await
            .unwrap()
    );
    assert_eq!(
        leases::holder(&store, "bot-poll:3").await.unwrap().as_deref(),
        Some("instance-b")
    );

    // Released leases are free at once.
    leases::release(&store, "bot-poll:3", "instance-b", b)
        .await
        .unwrap();
    assert!(leases::holder(&store, "bot-poll:3").await.unwrap().is_none());
    let again = leases::acquire(&store, "bot-poll:3", "instance-a", minute)
        .await
        .unwrap()
        .unwrap();
    assert!(again.fencing_token > b.fencing_token);
}
