//! The two ways of sending load: a closed loop (a fixed number of senders, each sending its next request when
//! the previous one is answered) and an open loop (requests started at a fixed rate whatever the answers, timed
//! from the moment they were due, so a slow server cannot hide its queue). Both stop at a request count or a
//! time limit, whichever comes first.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::report::{Answer, Figures};

/// Sends `requests` requests made by `call(n)` with `concurrency` senders, for at most `limit`.
pub async fn closed<F, Fut>(
    name: String,
    requests: usize,
    concurrency: usize,
    limit: Duration,
    call: F,
) -> Figures
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Answer>,
{
    let started = Instant::now();
    let results: Vec<(Duration, Answer)> = futures::stream::iter(0..requests)
        .take_while(|_| futures::future::ready(started.elapsed() < limit))
        .map(|n| {
            let request = call(n);
            async move {
                let sent = Instant::now();
                let answer = request.await;
                (sent.elapsed(), answer)
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    Figures::collect(name, results, started.elapsed())
}

/// Starts `rate` requests a second for `duration` (at most `limit`), each made by `call(n)`; at most
/// `max_in_flight` wait for their answer at once (a due request beyond that is counted as skipped).
pub async fn paced<F, Fut>(
    name: String,
    rate: u32,
    duration: Duration,
    limit: Duration,
    max_in_flight: usize,
    call: F,
) -> Figures
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Answer> + Send + 'static,
{
    let rate = rate.max(1);
    let total = usize::try_from(u128::from(rate) * duration.as_millis() / 1000).unwrap_or(usize::MAX);
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut running = JoinSet::new();
    let mut results = Vec::with_capacity(total);
    let mut skipped = 0;
    for n in 0..total {
        let due = ticker.tick().await;
        if started.elapsed() >= limit {
            break;
        }
        while let Some(done) = running.try_join_next() {
            if let Ok(result) = done {
                results.push(result);
            }
        }
        if running.len() >= max_in_flight {
            skipped += 1;
            continue;
        }
        let request = call(n);
        running.spawn(async move {
            let answer = request.await;
            (due.elapsed(), answer)
        });
    }
    while let Some(done) = running.join_next().await {
        if let Ok(result) = done {
            results.push(result);
        }
    }
    let mut figures = Figures::collect(name, results, started.elapsed());
    figures.skipped = skipped;
    figures
}
