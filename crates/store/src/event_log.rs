//! The event log, from the relay's side (core's [`EventLog`] port). Units of work write their events without a
//! number; [`sequence`] numbers the committed ones under a lock on the one `event_sequence` row, so numbers are
//! dense and follow commit order: an event that commits late gets a later number, and a client that resumes after
//! number N misses nothing. Old events are cleaned up daily.

use chrono::Utc;
use crm_core::CoreResult;
use crm_core::event::{DomainEvent, StoredEvent};
use crm_core::ids::EventSeq;
use crm_core::ports::{BoxFuture, EventLog};
use sea_orm::sea_query::{CaseStatement, Expr};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use tokio::sync::oneshot;

use crate::entity::{event_sequence, events};
use crate::writer::Job;
use crate::{Store, StoreError, StoreResult};

/// Writes `events` without numbers inside `conn`; the relay numbers them once they are committed.
pub(crate) async fn append<C: ConnectionTrait>(conn: &C, events: &[DomainEvent]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let rows = events.iter().map(|event| events::ActiveModel {
        kind: Set(event.kind().to_owned()),
        chat_id: Set(event.chat_id()),
        user_id: Set(event.user_id()),
        payload: Set(event.payload()),
        created_at: Set(now),
        ..Default::default()
    });
    events::Entity::insert_many(rows).exec(conn).await?;
    Ok(())
}

fn stored(row: events::Model, seq: i64) -> StoredEvent {
    StoredEvent::new(EventSeq(seq), row.kind, row.chat_id, row.user_id, row.payload)
}

/// Numbers up to `limit` committed events that have no number yet, in the order they were written, inside the
/// open transaction `conn`. The counter row is locked first, so two sequencers (instances) take turns.
pub(crate) async fn sequence<C: ConnectionTrait>(conn: &C, limit: u32) -> StoreResult<Vec<StoredEvent>> {
    let counter = event_sequence::Entity::find_by_id(1)
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| StoreError::Database(sea_orm::DbErr::RecordNotFound("event_sequence row 1".into())))?;
    let pending = events::Entity::find()
        .filter(events::Column::Seq.is_null())
        .order_by_asc(events::Column::Id)
        .limit(u64::from(limit))
        .all(conn)
        .await?;
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let first = counter.last_seq + 1;
    let mut numbers = CaseStatement::new();
    for (offset, row) in (0i64..).zip(&pending) {
        numbers = numbers.case(events::Column::Id.eq(row.id), Expr::val(first + offset));
    }
    let ids: Vec<i64> = pending.iter().map(|row| row.id).collect();
    events::Entity::update_many()
        .col_expr(events::Column::Seq, numbers.into())
        .filter(events::Column::Id.is_in(ids))
        .exec(conn)
        .await?;
    let last = first + i64::try_from(pending.len()).unwrap_or(i64::MAX) - 1;
    event_sequence::Entity::update_many()
        .col_expr(event_sequence::Column::LastSeq, Expr::val(last))
        .filter(event_sequence::Column::Id.eq(1))
        .exec(conn)
        .await?;
    Ok((first..)
        .zip(pending)
        .map(|(seq, row)| stored(row, seq))
        .collect())
}

async fn sequence_now(store: &Store, limit: u32) -> CoreResult<Vec<StoredEvent>> {
    if let Some(writer) = store.group_writer() {
        let (reply, answer) = oneshot::channel();
        writer.submit(Job::Sequence(limit, reply)).await?;
        return answer
            .await
            .map_err(|_| crm_core::CoreError::unavailable("the database writer has stopped"))?;
    }
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let outcome = async {
            let txn = store.begin_write().await?;
            let events = sequence(&txn, limit).await?;
            txn.commit().await?;
            Ok::<_, StoreError>(events)
        }
        .await;
        match outcome {
            Ok(events) => return Ok(events),
            Err(error) if error.is_retryable() && attempt < 8 => {
                tokio::time::sleep(std::time::Duration::from_millis(5 * u64::from(attempt))).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

impl EventLog for Store {
    fn sequence_pending(&self, limit: u32) -> BoxFuture<'_, CoreResult<Vec<StoredEvent>>> {
        Box::pin(sequence_now(self, limit))
    }

    fn read_after(&self, after: EventSeq, limit: u32) -> BoxFuture<'_, CoreResult<Vec<StoredEvent>>> {
        Box::pin(async move {
            let rows = events::Entity::find()
                .filter(events::Column::Seq.gt(after.0))
                .order_by_asc(events::Column::Seq)
                .limit(u64::from(limit))
                .all(self.db())
                .await
                .map_err(StoreError::from)?;
            Ok(rows
                .into_iter()
                .filter_map(|row| row.seq.map(|seq| stored(row, seq)))
                .collect())
        })
    }

    fn last_seq(&self) -> BoxFuture<'_, CoreResult<EventSeq>> {
        Box::pin(async move {
            let counter = event_sequence::Entity::find_by_id(1)
                .one(self.db())
                .await
                .map_err(StoreError::from)?;
            Ok(EventSeq(counter.map_or(0, |row| row.last_seq)))
        })
    }

    fn first_seq(&self) -> BoxFuture<'_, CoreResult<Option<EventSeq>>> {
        Box::pin(async move {
            let first: Option<Option<i64>> = events::Entity::find()
                .select_only()
                .column(events::Column::Seq)
                .filter(events::Column::Seq.is_not_null())
                .order_by_asc(events::Column::Seq)
                .into_tuple()
                .one(self.db())
                .await
                .map_err(StoreError::from)?;
            Ok(first.flatten().map(EventSeq))
        })
    }
}

/// Deletes numbered events older than `keep`; returns how many.
pub async fn purge_older_than(store: &Store, keep: chrono::Duration) -> StoreResult<u64> {
    let result = events::Entity::delete_many()
        .filter(events::Column::CreatedAt.lt(Utc::now() - keep))
        .filter(events::Column::Seq.is_not_null())
        .exec(store.writes())
        .await?;
    Ok(result.rows_affected)
}
