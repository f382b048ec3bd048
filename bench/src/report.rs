//! What a scenario measured (latencies, answers by status, wall time) and how it is printed: one markdown table
//! row per scenario, with the non-2xx answers broken down below the table.

use std::collections::BTreeMap;
use std::time::Duration;

/// How one request ended.
#[derive(Debug, Clone)]
pub enum Answer {
    /// The server answered with this HTTP status.
    Status(u16),
    /// The server answered with an error status; the text is the start of its body.
    Refused(u16, String),
    /// No answer (connection refused or reset, timeout); the text says why.
    Failed(String),
}

impl Answer {
    /// The answer of a `reqwest` call, reading the body of an error answer for the report.
    pub async fn of(response: reqwest::Result<reqwest::Response>) -> Self {
        match response {
            Ok(response) if response.status().is_success() => Answer::Status(response.status().as_u16()),
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                Answer::Refused(status, body.chars().take(200).collect())
            }
            Err(error) => Answer::Failed(error.to_string()),
        }
    }
}

/// The figures of one scenario.
pub struct Figures {
    /// Row label.
    pub name: String,
    /// Latency of every completed request.
    pub latencies: Vec<Duration>,
    /// Requests by outcome: `200`, `500`, `no answer`, …
    pub outcomes: BTreeMap<String, usize>,
    /// A few error answers, for the report.
    pub samples: Vec<String>,
    /// Wall time of the scenario.
    pub elapsed: Duration,
    /// Requests that were due but not sent (open-loop generator at its in-flight cap).
    pub skipped: usize,
}

impl Figures {
    /// Collects the outcomes of a scenario.
    pub fn collect(name: String, results: Vec<(Duration, Answer)>, elapsed: Duration) -> Self {
        let mut outcomes = BTreeMap::new();
        let mut samples = Vec::new();
        let mut latencies = Vec::with_capacity(results.len());
        for (latency, answer) in results {
            latencies.push(latency);
            let key = match &answer {
                Answer::Status(status) => status.to_string(),
                Answer::Refused(status, body) => {
                    if samples.len() < 3 {
                        samples.push(format!("{status}: {body}"));
                    }
                    status.to_string()
                }
                Answer::Failed(error) => {
                    if samples.len() < 3 {
                        samples.push(format!("no answer: {error}"));
                    }
                    "no answer".to_owned()
                }
            };
            *outcomes.entry(key).or_insert(0) += 1;
        }
        latencies.sort();
        Self {
            name,
            latencies,
            outcomes,
            samples,
            elapsed,
            skipped: 0,
        }
    }

    /// Requests that did not end with a 2xx answer (including those not answered at all).
    pub fn non_2xx(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|(key, _)| !key.starts_with('2') || key.len() != 3)
            .map(|(_, count)| count)
            .sum()
    }

    /// Completed requests per second of wall time.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Successful requests per second of wall time.
    pub fn ok_rate(&self) -> f64 {
        (self.latencies.len() - self.non_2xx().min(self.latencies.len())) as f64
            / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q` (0–1), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        quantile(&self.latencies, q).as_secs_f64() * 1000.0
    }

    /// The table row.
    pub fn row(&self) -> String {
        row(
            &self.name,
            self.latencies.len(),
            self.rate(),
            self.quantile_ms(0.50),
            self.quantile_ms(0.99),
            self.non_2xx(),
        )
    }

    /// A line per kind of failure, if there were any.
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.non_2xx() > 0 {
            let breakdown: Vec<String> = self
                .outcomes
                .iter()
                .map(|(key, count)| format!("{key}: {count}"))
                .collect();
            notes.push(format!("{}: answers {}", self.name, breakdown.join(", ")));
            for sample in &self.samples {
                notes.push(format!("  e.g. {sample}"));
            }
        }
        if self.skipped > 0 {
            notes.push(format!(
                "{}: {} requests not sent (generator at its in-flight cap)",
                self.name, self.skipped
            ));
        }
        notes
    }
}

/// The value at quantile `q` of sorted `values` (nearest rank).
pub fn quantile<T: Copy + Default>(sorted: &[T], q: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let last = sorted.len() - 1;
    let index = ((last as f64) * q).round() as usize;
    sorted.get(index.min(last)).copied().unwrap_or_default()
}

/// The table's header.
pub fn header() -> String {
    format!(
        "| {:<44} | {:>8} | {:>8} | {:>8} | {:>8} | {:>7} |\n|{:-<46}|{:->10}|{:->10}|{:->10}|{:->10}|{:->9}|",
        "scenario", "requests", "req/s", "p50 ms", "p99 ms", "non-2xx", "", "", "", "", "", ""
    )
}

/// One row of the table.
pub fn row(name: &str, requests: usize, rate: f64, p50: f64, p99: f64, non_2xx: usize) -> String {
    format!("| {name:<44} | {requests:>8} | {rate:>8.0} | {p50:>8.2} | {p99:>8.2} | {non_2xx:>7} |")
}

/// Progress on standard error, so that standard output holds only the figures.
pub fn progress(text: impl std::fmt::Display) {
    eprintln!("… {text}");
}

/// This process's resident memory and its peak, in bytes (Linux, `/proc/self/status`).
pub fn resident() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_take_the_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&values, 0.5), 51);
        assert_eq!(quantile(&values, 0.99), 99);
        assert_eq!(quantile::<u32>(&[], 0.5), 0);
    }

    #[test]
    fn non_2xx_counts_errors_and_missing_answers() {
        let results = vec![
            (Duration::from_millis(1), Answer::Status(200)),
            (Duration::from_millis(2), Answer::Refused(500, "deadlock".into())),
            (Duration::from_millis(3), Answer::Failed("reset".into())),
        ];
        let figures = Figures::collect("x".into(), results, Duration::from_secs(1));
        assert_eq!(figures.non_2xx(), 2);
        assert_eq!(figures.notes().len(), 3);
    }
}
