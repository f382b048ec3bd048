//! `GrammersConnection`: a live connection of one authorised account, crm-core's [`Connection`]. This module
//! owns the sender pool, the periodic session flush and the wiring; `updates` is the ordered update stream with
//! its checkpoints, `rpc` the calls (send, mark read, download, history).

mod rpc;
mod updates;

use std::sync::Arc;
use std::time::Duration;

use crm_core::ids::{PeerId, TelegramMessageId};
use crm_core::inbound::InboundEvent;
use crm_core::outbound::{DownloadedFile, OutgoingMessage, SendFuture};
use crm_core::personal::{
    BoxFuture, Checkpoint, CollectScope, Connection, HistoryLimits, ReceivedUpdate, UserError,
};
use grammers_session::updates::UpdatesLike;
use grammers_tl_types as tl;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::outgoing::input_peer;
use crate::pool::Pool;
use crate::session::DbSession;
use updates::{Started, Stream};

/// How often changed peers and update state are saved.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// A connected personal account.
pub struct GrammersConnection {
    pool: Pool,
    session: Arc<DbSession>,
    stream: tokio::sync::Mutex<Stream>,
    scope: CollectScope,
    self_id: i64,
    /// Wakes the update stream to ask Telegram for the difference.
    gaps: mpsc::Sender<UpdatesLike>,
    /// The periodic flush and the update relay.
    tasks: [JoinHandle<()>; 2],
}

impl GrammersConnection {
    /// Builds the connection over a started pool whose raw updates arrive on `updates`: starts the ordered
    /// update stream (catching up from the session's update state) and the periodic flush.
    pub async fn start(
        pool: Pool,
        session: Arc<DbSession>,
        updates: mpsc::Receiver<UpdatesLike>,
        scope: CollectScope,
        self_id: i64,
    ) -> Result<Self, UserError> {
        let Started { stream, gaps, relay } = Stream::start(&pool, updates).await?;
        let flushed = Arc::clone(&session);
        let flusher = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(FLUSH_INTERVAL);
            loop {
                ticks.tick().await;
                if let Err(error) = flushed.flush().await {
                    warn!(%error, "saving the Telegram session failed");
                }
            }
        });
        Ok(Self {
            pool,
            session,
            stream: tokio::sync::Mutex::new(stream),
            scope,
            self_id,
            gaps,
            tasks: [flusher, relay],
        })
    }

    /// The peer to address for a Bot API dialog id, from the session's cache.
    fn resolve(&self, dialog_id: i64) -> Result<tl::enums::InputPeer, UserError> {
        input_peer(dialog_id, self.session.peer_by_dialog_id(dialog_id)?)
    }
}

impl Drop for GrammersConnection {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.pool.handle.quit();
        let session = Arc::clone(&self.session);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = session.flush().await {
                    warn!(%error, "saving the Telegram session on disconnect failed");
                }
            });
        }
    }
}

impl Connection for GrammersConnection {
    fn next_update(&self) -> BoxFuture<'_, Result<ReceivedUpdate, UserError>> {
        Box::pin(self.next())
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for task in &self.tasks {
                task.abort();
            }
            self.pool.stop().await;
            if let Err(error) = self.session.flush().await {
                warn!(%error, "saving the Telegram session on disconnect failed");
            }
        })
    }

    fn checkpoint(&self, checkpoint: Checkpoint) -> BoxFuture<'_, Result<(), UserError>> {
        Box::pin(self.apply_checkpoint(checkpoint))
    }

    /// `updates.getState` as the round trip; then the stream is told a gap may exist, so it asks Telegram for
    /// the difference (empty when nothing was missed) and delivers anything that did not arrive.
    fn ping(&self) -> BoxFuture<'_, Result<(), UserError>> {
        Box::pin(async move {
            self.call(&tl::functions::updates::GetState {}).await?;
            // A full relay already holds updates that will wake the stream; nothing is lost by skipping.
            let _ = self.gaps.try_send(UpdatesLike::ConnectionClosed);
            Ok(())
        })
    }

    fn send(&self, message: OutgoingMessage, random_id: i64) -> SendFuture<'_> {
        Box::pin(self.send_message(message, random_id))
    }

    fn mark_read(&self, peer_id: PeerId, max_id: TelegramMessageId) -> BoxFuture<'_, Result<(), UserError>> {
        Box::pin(self.read(peer_id, max_id))
    }

    fn download(
        &self,
        peer_id: PeerId,
        telegram_message_id: TelegramMessageId,
        max_bytes: u64,
    ) -> BoxFuture<'_, Result<DownloadedFile, UserError>> {
        Box::pin(self.fetch_file(peer_id, telegram_message_id, max_bytes))
    }

    fn history(
        &self,
        limits: HistoryLimits,
        scope: CollectScope,
    ) -> BoxFuture<'_, Result<Vec<InboundEvent>, UserError>> {
        Box::pin(self.collect_history(limits, scope))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::gateway::GatewaySettings;
    use crate::session::tests::MemoryVault;
    use crm_core::ids::AccountId;

    /// A connection of account 7 with `settings`, whose update stream is fed by the test instead of the network.
    pub(crate) async fn fed_connection_with(
        scope: CollectScope,
        settings: &GatewaySettings,
    ) -> (GrammersConnection, mpsc::Sender<UpdatesLike>, Arc<MemoryVault>) {
        let vault = Arc::new(MemoryVault::default());
        let session = Arc::new(DbSession::fresh(
            vault.clone(),
            AccountId(7),
            settings.dc_override,
        ));
        let mut pool = Pool::start(Arc::clone(&session), 1, settings);
        drop(pool.take_updates());
        let (sender, updates) = mpsc::channel(8);
        let connection =
            GrammersConnection::start(pool, session, updates, scope, crate::mapping::fixtures::SELF_ID)
                .await
                .unwrap();
        (connection, sender, vault)
    }

    /// A fed connection whose requests go to a closed local port: nothing here may reach the network.
    pub(crate) async fn fed_connection(
        scope: CollectScope,
    ) -> (GrammersConnection, mpsc::Sender<UpdatesLike>, Arc<MemoryVault>) {
        let settings = GatewaySettings {
            dc_override: Some("127.0.0.1:9".parse().unwrap()),
            ..GatewaySettings::default()
        };
        fed_connection_with(scope, &settings).await
    }
}
