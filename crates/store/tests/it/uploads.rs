//! Operators' uploads never sent: what the quota counts, and the housekeeping that forgets old ones, exactly
//! once under concurrent callers.

use chrono::{Duration, Utc};
use crm_core::user::Role;
use crm_store::entity::media_files;
use crm_store::repo::media::{self, NewUpload, StoredFile};
use crm_testkit_db::{TestDatabase, on_every_backend};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::support::{migrated_store, user};

on_every_backend!(old_unsent_uploads_are_forgotten_once_and_recent_ones_count_against_the_quota);

fn stored(path: &str, size: i64) -> StoredFile {
    StoredFile {
        storage_path: path.to_owned(),
        content_type: "image/png".to_owned(),
        file_size: size,
        sha256: "0".repeat(64),
    }
}

async fn old_unsent_uploads_are_forgotten_once_and_recent_ones_count_against_the_quota(
    database: TestDatabase,
) {
    let store = migrated_store(&database).await;
    let olga = user(&store, "olga", Role::Operator).await;
    let pavel = user(&store, "pavel", Role::Operator).await;
    let upload = |owner: crm_core::ids::UserId, path: &'static str, size: i64| {
        let store = store.clone();
        async move {
            media::create_upload(
                &store,
                NewUpload {
                    user_id: owner,
                    file: stored(path, size),
                    file_name: "a.png".to_owned(),
                },
            )
            .await
            .unwrap()
        }
    };
    let old = upload(olga.id, "2026/01/old.png", 300).await;
    upload(olga.id, "2026/11/new.png", 200).await;
    upload(pavel.id, "2026/11/pavels.png", 50).await;
    media_files::Entity::update_many()
        .col_expr(
            media_files::Column::CreatedAt,
            Expr::value(Utc::now() - Duration::hours(30)),
        )
        .filter(media_files::Column::Id.eq(old.id.0))
        .exec(store.db())
        .await
        .unwrap();
    assert_eq!(media::unsent_upload_bytes(&store, olga.id).await.unwrap(), 500);
    assert_eq!(media::unsent_upload_bytes(&store, pavel.id).await.unwrap(), 50);

    // Four housekeepers at once (instances, or a retried job): the old upload is taken by exactly one.
    let takers = (0..4).map(|_| {
        let store = store.clone();
        async move {
            media::take_unsent_uploads(&store, Duration::hours(24))
                .await
                .unwrap()
        }
    });
    let taken: Vec<String> = futures::future::join_all(takers)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(taken, vec!["2026/01/old.png".to_owned()]);
    assert!(media::find(&store, old.id).await.unwrap().is_none());
    assert_eq!(media::unsent_upload_bytes(&store, olga.id).await.unwrap(), 200);
    assert!(
        media::take_unsent_uploads(&store, Duration::hours(24))
            .await
            .unwrap()
            .is_empty()
    );
    store.close().await.unwrap();
}
