//! The store as the core's ports for background work: leases, the job queue and the accounts the pollers and
//! the personal-account supervisor work with. Each method hands over to the repository that owns the table.

use chrono::{DateTime, Utc};
use crm_core::account::{Account, AccountStatus};
use crm_core::ids::{AccountId, JobId};
use crm_core::jobs::{ClaimedJob, JobStatus};
use crm_core::personal::{AccountHandle, Profile};
use crm_core::ports::{Accounts, BotSecrets, BoxFuture, JobQueue, Lease, Leases};
use crm_core::{CoreError, CoreResult};

use crate::repo::{accounts, jobs, leases, personal, tokens};
use crate::{Store, StoreResult};

fn core<T>(result: StoreResult<T>) -> CoreResult<T> {
    result.map_err(CoreError::from)
}

impl Leases for Store {
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: chrono::Duration,
    ) -> BoxFuture<'a, CoreResult<Option<Lease>>> {
        Box::pin(async move { core(leases::acquire(self, name, holder, ttl).await) })
    }

    fn renew<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        lease: Lease,
        ttl: chrono::Duration,
    ) -> BoxFuture<'a, CoreResult<bool>> {
        Box::pin(async move { core(leases::renew(self, name, holder, lease, ttl).await) })
    }

    fn release<'a>(&'a self, name: &'a str, holder: &'a str, lease: Lease) -> BoxFuture<'a, CoreResult<()>> {
        Box::pin(async move { core(leases::release(self, name, holder, lease).await) })
    }

    fn holder<'a>(&'a self, name: &'a str) -> BoxFuture<'a, CoreResult<Option<String>>> {
        Box::pin(async move { core(leases::holder(self, name).await) })
    }
}

impl JobQueue for Store {
    fn claim<'a>(
        &'a self,
        worker: &'a str,
        limit: u64,
        lock_for: chrono::Duration,
        connected: &'a [AccountId],
    ) -> BoxFuture<'a, CoreResult<Vec<ClaimedJob>>> {
        Box::pin(async move { core(jobs::claim(self, worker, limit, lock_for, connected).await) })
    }

    fn complete<'a>(&'a self, job: &'a ClaimedJob) -> BoxFuture<'a, CoreResult<bool>> {
        Box::pin(async move { core(jobs::complete(self, job).await) })
    }

    fn retry_later<'a>(
        &'a self,
        job: &'a ClaimedJob,
        at: DateTime<Utc>,
        error: &'a str,
    ) -> BoxFuture<'a, CoreResult<JobStatus>> {
        Box::pin(async move { core(jobs::retry_later(self, job, at, error).await) })
    }

    fn fail<'a>(&'a self, job: &'a ClaimedJob, error: &'a str) -> BoxFuture<'a, CoreResult<bool>> {
        Box::pin(async move { core(jobs::fail_permanently(self, job, error).await) })
    }

    fn renew<'a>(
        &'a self,
        claims: &'a [(JobId, String)],
        lock_for: chrono::Duration,
    ) -> BoxFuture<'a, CoreResult<u64>> {
        Box::pin(async move { core(jobs::renew(self, claims, lock_for).await) })
    }

    fn release_stale<'a>(&'a self, worker: &'a str) -> BoxFuture<'a, CoreResult<u64>> {
        Box::pin(async move { core(jobs::release_stale_claims(self, worker).await) })
    }

    fn schedule_housekeeping(&self) -> BoxFuture<'_, CoreResult<bool>> {
        Box::pin(async move { core(jobs::schedule_housekeeping(self).await) })
    }

    fn clean_up(
        &self,
        revoked_tokens_older_than: chrono::Duration,
        events_older_than: chrono::Duration,
    ) -> BoxFuture<'_, CoreResult<(u64, u64)>> {
        Box::pin(async move {
            let tokens = core(tokens::purge_revoked(self, revoked_tokens_older_than).await)?;
            let events = core(crate::event_log::purge_older_than(self, events_older_than).await)?;
            Ok((tokens, events))
        })
    }

    fn take_unsent_uploads(&self, older_than: chrono::Duration) -> BoxFuture<'_, CoreResult<Vec<String>>> {
        Box::pin(async move { core(crate::repo::media::take_unsent_uploads(self, older_than).await) })
    }
}

impl Accounts for Store {
    fn find(&self, id: AccountId) -> BoxFuture<'_, CoreResult<Option<Account>>> {
        Box::pin(async move { core(accounts::find(self, id).await) })
    }

    fn bots_to_poll(&self) -> BoxFuture<'_, CoreResult<Vec<Account>>> {
        Box::pin(async move { core(accounts::bots_to_poll(self).await) })
    }

    fn personal_to_connect(&self) -> BoxFuture<'_, CoreResult<Vec<Account>>> {
        Box::pin(async move { core(personal::accounts_to_connect(self).await) })
    }

    fn handle<'a>(&'a self, account: &'a Account) -> BoxFuture<'a, CoreResult<Option<AccountHandle>>> {
        Box::pin(async move { core(personal::handle(self, account).await) })
    }

    fn bot_secrets(&self, id: AccountId) -> BoxFuture<'_, CoreResult<BotSecrets>> {
        Box::pin(async move {
            let secrets = core(accounts::secrets(self, id).await)?;
            Ok(BotSecrets {
                token: secrets.bot_token,
                webhook_secret: secrets.webhook_secret,
            })
        })
    }

    fn set_status(&self, id: AccountId, status: AccountStatus) -> BoxFuture<'_, CoreResult<()>> {
        Box::pin(async move { core(personal::set_status(self, id, status).await) })
    }

    fn record_failure<'a>(
        &'a self,
        id: AccountId,
        code: &'a str,
        message: &'a str,
        retry_at: Option<DateTime<Utc>>,
    ) -> BoxFuture<'a, CoreResult<()>> {
        Box::pin(async move { core(personal::record_failure(self, id, code, message, retry_at).await) })
    }

    fn record_error<'a>(
        &'a self,
        id: AccountId,
        message: &'a str,
        status: Option<AccountStatus>,
    ) -> BoxFuture<'a, CoreResult<()>> {
        Box::pin(async move { core(accounts::record_error(self, id, message, status).await) })
    }

    fn connected<'a>(&'a self, id: AccountId, profile: &'a Profile) -> BoxFuture<'a, CoreResult<()>> {
        Box::pin(async move { core(personal::complete_connect(self, id, profile).await) })
    }

    fn history_imported(&self, id: AccountId) -> BoxFuture<'_, CoreResult<()>> {
        Box::pin(async move { core(personal::mark_history_imported(self, id).await) })
    }

    fn advance_polling_offset(&self, id: AccountId, offset: i64) -> BoxFuture<'_, CoreResult<()>> {
        Box::pin(async move { core(accounts::advance_polling_offset(self, id, offset).await) })
    }
}
