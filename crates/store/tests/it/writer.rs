//! Units of work through the `Database` port, many at once (on SQLite they share group commits): a unit that
//! fails after writing leaves nothing behind, alone or in a group, and the units beside it commit with their
//! events.

use std::sync::Arc;

use chrono::Utc;
use crm_core::CoreError;
use crm_core::chat::ChatType;
use crm_core::event::DomainEvent;
use crm_core::ids::{AccountId, ChatId, PeerId};
use crm_core::inbound::ChatRef;
use crm_core::ports::{BoxFuture, Database, Transaction, Tx, execute};
use crm_store::entity::chats;
use crm_testkit_db::{TestDatabase, on_every_backend};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::support::{bot_account, migrated_store, sequenced};

on_every_backend!(a_failed_unit_leaves_nothing_and_its_group_commits);

/// Creates the chat with `peer` and announces it; fails afterwards when `fail`.
struct OpenChat {
    account: AccountId,
    peer: i64,
    fail: bool,
}

impl Transaction for OpenChat {
    type Output = ChatId;

    fn body<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, crm_core::CoreResult<ChatId>> {
        Box::pin(async move {
            let chat = ChatRef {
                peer_id: PeerId(self.peer),
                chat_type: ChatType::Private,
                title: None,
                username: None,
                first_name: Some("Customer".into()),
                last_name: None,
            };
            let chat = tx.create_chat(self.account, &chat, Utc::now()).await?;
            tx.append_events(vec![DomainEvent::ChatRemoved {
                user_id: crm_core::ids::UserId(1),
                chat_id: chat.id,
            }])
            .await?;
            if self.fail {
                return Err(CoreError::invalid("refused after writing"));
            }
            Ok(chat.id)
        })
    }
}

async fn a_failed_unit_leaves_nothing_and_its_group_commits(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let account = bot_account(&store, "bot", None).await.id;
    sequenced(&store).await;
    let db: Arc<dyn Database> = Arc::new(store.clone());

    // Alone.
    let alone = execute(
        db.as_ref(),
        OpenChat {
            account,
            peer: 1,
            fail: true,
        },
    )
    .await;
    assert!(matches!(alone, Err(CoreError::Invalid { .. })), "{alone:?}");

    // Many at once, every third failing.
    let units: Vec<_> = (0..60)
        .map(|n| {
            let db = Arc::clone(&db);
            tokio::spawn(async move {
                let unit = OpenChat {
                    account,
                    peer: 100 + n,
                    fail: n % 3 == 0,
                };
                (n, execute(db.as_ref(), unit).await)
            })
        })
        .collect();
    let mut committed = 0;
    for unit in units {
        let (n, result) = unit.await.unwrap();
        match result {
            Ok(_) => {
                assert_ne!(n % 3, 0, "unit {n} was to fail");
                committed += 1;
            }
            Err(error) => {
                assert_eq!(n % 3, 0, "unit {n} failed: {error:?}");
                assert!(matches!(error, CoreError::Invalid { .. }), "{error:?}");
            }
        }
    }
    assert_eq!(committed, 40);
    let failed_peers: Vec<i64> = std::iter::once(1)
        .chain((0..60).filter(|n| n % 3 == 0).map(|n| 100 + n))
        .collect();
    let leftovers = chats::Entity::find()
        .filter(chats::Column::PeerId.is_in(failed_peers))
        .count(store.db())
        .await
        .unwrap();
    assert_eq!(leftovers, 0, "nothing of a failed unit is committed");
    assert_eq!(chats::Entity::find().count(store.db()).await.unwrap(), 40);
    let events = sequenced(&store).await;
    assert_eq!(
        events.len(),
        40,
        "the events of the committed units, and only theirs"
    );
}
