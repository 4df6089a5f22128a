//! The Logs Insights runner: start a query, poll it with backoff until it finishes, turn Failed,
//! Timeout and Cancelled into clear errors, split the time range when a query returns as many rows as
//! its limit (the rest would be cut silently), keep within a concurrency budget, remember the cost
//! (`statistics.bytesScanned`) and stop every running query on request (Ctrl-C).

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use natgw_core::insights::{InsightsQuery, MAX_ROWS};
use natgw_core::report::QueryRun;
use natgw_core::time::Timestamp;
use natgw_core::topology::{QueryResults, QueryStatus};
use tokio::sync::Semaphore;

use crate::{AwsApi, Error, Result};

/// How the runner behaves.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Queries in flight at once (the account allows 100 over all its users; stay well below).
    pub max_concurrent: usize,
    /// First wait between polls; grows by half each poll up to `poll_max`.
    pub poll_initial: Duration,
    pub poll_max: Duration,
    /// Give up (and stop the query) after this long.
    pub timeout: Duration,
    /// Rows asked per query (at most [`MAX_ROWS`]); a full answer splits the range.
    pub row_limit: u32,
    /// Never slice below this many seconds (the API's resolution is one); a full answer there is kept
    /// and flagged partial.
    pub min_split_secs: u64,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            max_concurrent: 8,
            poll_initial: Duration::from_millis(500),
            poll_max: Duration::from_secs(5),
            timeout: Duration::from_secs(15 * 60),
            row_limit: MAX_ROWS,
            min_split_secs: 1,
        }
    }
}

/// Rows of a query, possibly gathered over several sub-ranges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    pub rows: Vec<Vec<(String, String)>>,
    /// Some sub-range still hit the row limit at the smallest split: rows are missing.
    pub partial: bool,
}

/// Runs Logs Insights queries through an [`AwsApi`].
pub struct QueryRunner<'a> {
    api: &'a dyn AwsApi,
    options: RunnerOptions,
    slots: Semaphore,
    running: Mutex<BTreeSet<String>>,
    runs: Mutex<Vec<QueryRun>>,
    /// Set by [`QueryRunner::stop_all`]: no query starts after it, and one whose StartQuery was in
    /// flight is stopped as soon as its ID comes back.
    cancelled: AtomicBool,
}

impl std::fmt::Debug for QueryRunner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryRunner").field("options", &self.options).field("runs", &self.runs).finish_non_exhaustive()
    }
}

impl<'a> QueryRunner<'a> {
    pub fn new(api: &'a dyn AwsApi, options: RunnerOptions) -> Self {
        let slots = Semaphore::new(options.max_concurrent.max(1));
        QueryRunner {
            api,
            options,
            slots,
            running: Mutex::default(),
            runs: Mutex::default(),
            cancelled: AtomicBool::new(false),
        }
    }

    /// Every query run so far, in the order they finished.
    pub fn runs(&self) -> Vec<QueryRun> {
        self.runs.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Bytes scanned by every query so far.
    pub fn bytes_scanned(&self) -> u64 {
        self.runs().iter().map(|r| r.bytes_scanned).sum()
    }

    /// Runs one query to its end and returns its final results. Errors when it fails, times out or
    /// is cancelled; on our own timeout the query is stopped first.
    pub async fn run(&self, query: &InsightsQuery) -> Result<QueryResults> {
        let _slot = self.slots.acquire().await.map_err(|_| Error::InvalidRequest {
            operation: crate::actions::START_QUERY,
            message: "the query runner was closed".into(),
        })?;
        if self.cancelled.load(Ordering::SeqCst) {
            return Err(cancelled());
        }
        let id = self.api.start_query(query, self.options.row_limit).await?;
        if self.cancelled.load(Ordering::SeqCst) {
            let _ = self.api.stop_query(&id).await;
            return Err(cancelled());
        }
        self.track(&id, true);
        let outcome = self.poll(&id).await;
        self.track(&id, false);
        let results = match outcome {
            Ok(r) => r,
            Err(e) => {
                // Our timeout or a transport failure mid-poll: do not leave it scanning (and billing).
                let _ = self.api.stop_query(&id).await;
                return Err(e);
            }
        };
        self.record(query, &results);
        match results.status {
            QueryStatus::Complete => Ok(results),
            status => Err(Error::QueryFailed {
                kind: kind_name(query),
                status: format!("{status:?}").to_lowercase(),
                hint: match status {
                    QueryStatus::Timeout => {
                        "Logs Insights stops queries after 60 minutes: use a shorter --since".into()
                    }
                    QueryStatus::Cancelled => "someone stopped it (StopQuery)".into(),
                    _ => "check the query in the CloudWatch console (Logs Insights, query history)".into(),
                },
            }),
        }
    }

    /// Runs `query` and, when it returns a full `row_limit` of rows, runs it again over slices of its
    /// time range, so no row is cut silently: as many slices as `recordsMatched` says are needed (with
    /// a margin), recursively where the records bunch up, down to `min_split_secs`. Slices run
    /// concurrently within the budget.
    pub async fn run_all_rows(&self, query: &InsightsQuery) -> Result<Rows> {
        let results = self.run(query).await?;
        let limit = u64::from(self.options.row_limit.max(1));
        let full = results.rows.len() as u64 >= limit;
        let span = query.end.saturating_sub(query.start) + 1;
        let min = self.options.min_split_secs.max(1);
        if !full {
            return Ok(Rows { rows: results.rows, partial: false });
        }
        if span < 2 * min {
            return Ok(Rows { rows: results.rows, partial: true });
        }
        let needed = ((results.records_matched.max(0.0) as u64).max(limit + 1) * 5 / 4).div_ceil(limit);
        let pieces = needed.clamp(2, span / min);
        let slices: Vec<InsightsQuery> = (0..pieces)
            .map(|i| {
                let mut q = query.clone();
                q.start = query.start + span * i / pieces;
                q.end = query.start + span * (i + 1) / pieces - 1;
                q
            })
            .collect();
        let parts = futures_util::future::join_all(slices.iter().map(|q| Box::pin(self.run_all_rows(q)))).await;
        let mut out = Rows::default();
        for p in parts {
            let p = p?;
            out.rows.extend(p.rows);
            out.partial |= p.partial;
        }
        Ok(out)
    }

    /// Stops every query still running (Ctrl-C), all at once and for at most 10 s, and every later
    /// one as soon as it starts; how many were running.
    pub async fn stop_all(&self) -> usize {
        self.cancelled.store(true, Ordering::SeqCst);
        let ids: Vec<String> = self.running.lock().map(|r| r.iter().cloned().collect()).unwrap_or_default();
        let stops = futures_util::future::join_all(ids.iter().map(|id| self.api.stop_query(id)));
        let _ = tokio::time::timeout(Duration::from_secs(10), stops).await;
        ids.len()
    }

    async fn poll(&self, id: &str) -> Result<QueryResults> {
        let started = tokio::time::Instant::now();
        let mut wait = self.options.poll_initial;
        loop {
            tokio::time::sleep(wait).await;
            if self.cancelled.load(Ordering::SeqCst) {
                return Err(cancelled());
            }
            let r = match self.api.get_query_results(id).await {
                Ok(r) => r,
                // Throttled even after the SDK's retries: the query goes on; poll again, slower.
                Err(Error::Throttled { .. }) if started.elapsed() < self.options.timeout => {
                    wait = (wait * 2).min(self.options.poll_max);
                    continue;
                }
                Err(e) => return Err(e),
            };
            if r.status.is_finished() {
                return Ok(r);
            }
            if started.elapsed() >= self.options.timeout {
                return Err(Error::QueryFailed {
                    kind: "query".into(),
                    status: "timeout".into(),
                    hint: format!(
                        "still {:?} after {} s; it was stopped. Narrow the time range",
                        r.status,
                        self.options.timeout.as_secs()
                    ),
                });
            }
            wait = (wait + wait / 2).min(self.options.poll_max);
        }
    }

    fn track(&self, id: &str, on: bool) {
        if let Ok(mut r) = self.running.lock() {
            if on {
                r.insert(id.to_owned());
            } else {
                r.remove(id);
            }
        }
    }

    fn record(&self, query: &InsightsQuery, r: &QueryResults) {
        if let Ok(mut runs) = self.runs.lock() {
            runs.push(QueryRun {
                kind: query.kind,
                start: Timestamp(query.start),
                end: Timestamp(query.end),
                status: r.status,
                rows: r.rows.len() as u64,
                records_scanned: r.records_scanned as u64,
                bytes_scanned: r.bytes_scanned as u64,
            });
        }
    }
}

fn cancelled() -> Error {
    Error::QueryFailed { kind: "query".into(), status: "cancelled".into(), hint: "interrupted (Ctrl-C)".into() }
}

fn kind_name(q: &InsightsQuery) -> String {
    q.kind.name().to_owned()
}

#[cfg(all(test, feature = "mock"))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use natgw_core::insights::QueryKind;

    use super::*;
    use crate::MockAwsApi;

    fn query(start: u64, end: u64) -> InsightsQuery {
        InsightsQuery {
            kind: QueryKind::DestinationFlows,
            text: "fields srcAddr".into(),
            log_groups: vec!["/vpc/flow".into()],
            start,
            end,
            destinations: Vec::new(),
        }
    }

    fn results(status: QueryStatus, rows: usize) -> QueryResults {
        QueryResults {
            status,
            rows: (0..rows).map(|i| vec![("srcPort".to_owned(), i.to_string())]).collect(),
            records_matched: rows as f64,
            records_scanned: 1000.0,
            bytes_scanned: 2_000_000.0,
        }
    }

    fn options() -> RunnerOptions {
        RunnerOptions {
            poll_initial: Duration::from_millis(1),
            poll_max: Duration::from_millis(4),
            timeout: Duration::from_secs(5),
            ..RunnerOptions::default()
        }
    }

    #[tokio::test]
    async fn polls_until_complete_and_records_the_cost() {
        let mut m = MockAwsApi::new();
        m.expect_start_query().times(1).returning(|_, limit| {
            assert_eq!(limit, MAX_ROWS);
            Ok("q-1".into())
        });
        let polls = AtomicUsize::new(0);
        m.expect_get_query_results().times(3).returning(move |id| {
            assert_eq!(id, "q-1");
            Ok(match polls.fetch_add(1, Ordering::SeqCst) {
                0 => results(QueryStatus::Scheduled, 0),
                1 => results(QueryStatus::Running, 2),
                _ => results(QueryStatus::Complete, 3),
            })
        });
        m.expect_stop_query().times(0);
        let runner = QueryRunner::new(&m, options());
        let r = runner.run(&query(0, 3600)).await.unwrap();
        assert_eq!(r.rows.len(), 3);
        let runs = runner.runs();
        assert_eq!(runs.len(), 1);
        assert_eq!((runs[0].rows, runs[0].bytes_scanned, runs[0].status), (3, 2_000_000, QueryStatus::Complete));
        assert_eq!(runner.bytes_scanned(), 2_000_000);
    }

    #[tokio::test]
    async fn failed_timeout_and_cancelled_queries_are_clear_errors() {
        for (status, word) in
            [(QueryStatus::Failed, "failed"), (QueryStatus::Timeout, "timeout"), (QueryStatus::Cancelled, "cancelled")]
        {
            let mut m = MockAwsApi::new();
            m.expect_start_query().returning(|_, _| Ok("q-1".into()));
            m.expect_get_query_results().returning(move |_| Ok(results(status, 0)));
            let e = QueryRunner::new(&m, options()).run(&query(0, 60)).await.unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("the Logs Insights destination-flows query ended {word}: ")), "{msg}");
        }
    }

    #[tokio::test]
    async fn throttled_polls_are_retried_not_fatal() {
        let mut m = MockAwsApi::new();
        m.expect_start_query().returning(|_, _| Ok("q-1".into()));
        let polls = AtomicUsize::new(0);
        m.expect_get_query_results().times(3).returning(move |_| match polls.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => Err(Error::Throttled { operation: "logs:GetQueryResults", message: "Rate exceeded".into() }),
            _ => Ok(results(QueryStatus::Complete, 2)),
        });
        let r = QueryRunner::new(&m, options()).run(&query(0, 60)).await.unwrap();
        assert_eq!(r.rows.len(), 2);
    }

    #[tokio::test]
    async fn a_query_past_our_timeout_is_stopped() {
        let mut m = MockAwsApi::new();
        m.expect_start_query().returning(|_, _| Ok("q-slow".into()));
        m.expect_get_query_results().returning(|_| Ok(results(QueryStatus::Running, 0)));
        m.expect_stop_query().times(1).withf(|id| id == "q-slow").returning(|_| Ok(true));
        let runner = QueryRunner::new(&m, RunnerOptions { timeout: Duration::from_millis(20), ..options() });
        let e = runner.run(&query(0, 60)).await.unwrap_err();
        assert!(e.to_string().contains("timeout"), "{e}");
    }

    #[tokio::test]
    async fn stop_all_stops_what_is_running() {
        let mut m = MockAwsApi::new();
        m.expect_start_query().returning(|_, _| Ok("q-7".into()));
        m.expect_get_query_results().returning(|_| Ok(results(QueryStatus::Running, 0)));
        m.expect_stop_query().times(1).withf(|id| id == "q-7").returning(|_| Ok(true));
        let runner = QueryRunner::new(&m, options());
        let q = query(0, 60);
        tokio::select! {
            _ = runner.run(&q) => panic!("the query never completes"),
            n = async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                runner.stop_all().await
            } => assert_eq!(n, 1),
        }
    }

    #[tokio::test]
    async fn after_ctrl_c_nothing_starts() {
        let mut m = MockAwsApi::new();
        m.expect_start_query().times(0);
        let runner = QueryRunner::new(&m, options());
        assert_eq!(runner.stop_all().await, 0);
        let e = runner.run(&query(0, 60)).await.unwrap_err();
        assert!(e.to_string().contains("interrupted (Ctrl-C)"), "{e}");
    }

    #[tokio::test]
    async fn full_answers_split_the_time_range_until_nothing_is_cut() {
        // 4 rows per query at most; the data holds one row per 30 s, so a range answers in full
        // only when it spans under 2 minutes.
        let ranges: Arc<Mutex<Vec<(u64, u64)>>> = Arc::default();
        let mut m = MockAwsApi::new();
        let seen = ranges.clone();
        m.expect_start_query().returning(move |q, _| {
            let mut s = seen.lock().unwrap();
            s.push((q.start, q.end));
            Ok(format!("q-{}-{}", q.start, q.end))
        });
        m.expect_get_query_results().returning(|id| {
            let mut parts = id.split('-').skip(1).map(|p| p.parse::<u64>().unwrap());
            let (s, e) = (parts.next().unwrap(), parts.next().unwrap());
            let n = ((s..=e).filter(|t| t % 30 == 0).count()).min(4);
            Ok(results(QueryStatus::Complete, n))
        });
        let runner = QueryRunner::new(&m, RunnerOptions { row_limit: 4, min_split_secs: 30, ..options() });
        let rows = runner.run_all_rows(&query(0, 479)).await.unwrap();
        assert_eq!(rows.rows.len(), 16, "every 30-s row of 8 minutes");
        assert!(!rows.partial);
        let ranges = ranges.lock().unwrap().clone();
        assert!(ranges.len() > 1 && ranges[0] == (0, 479), "{ranges:?}");
        // Every slice run last answered in full (under the limit) and they tile the range.
        let mut leaves: Vec<(u64, u64)> =
            ranges.iter().copied().filter(|&(s, e)| ((s..=e).filter(|t| t % 30 == 0).count()) < 4).collect();
        leaves.sort_unstable();
        assert_eq!(leaves.first().map(|l| l.0), Some(0));
        assert!(
            leaves.windows(2).all(|w| w[0].1 + 1 == w[1].0) && leaves.last().map(|l| l.1) == Some(479),
            "{leaves:?}"
        );

        // Too dense to split below the floor: kept, flagged partial.
        let runner = QueryRunner::new(&m, RunnerOptions { row_limit: 4, min_split_secs: 300, ..options() });
        let rows = runner.run_all_rows(&query(0, 479)).await.unwrap();
        assert!(rows.partial && rows.rows.len() == 4);
    }

    #[tokio::test]
    async fn concurrency_stays_within_the_budget() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut m = MockAwsApi::new();
        let (f, mx) = (in_flight.clone(), most.clone());
        m.expect_start_query().returning(move |_, _| {
            let now = f.fetch_add(1, Ordering::SeqCst) + 1;
            mx.fetch_max(now, Ordering::SeqCst);
            Ok("q".into())
        });
        let f = in_flight.clone();
        let polls = Arc::new(AtomicUsize::new(0));
        m.expect_get_query_results().returning(move |_| {
            // Every other poll completes one query.
            if polls.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
                f.fetch_sub(1, Ordering::SeqCst);
                Ok(results(QueryStatus::Complete, 1))
            } else {
                Ok(results(QueryStatus::Running, 0))
            }
        });
        let runner = QueryRunner::new(&m, RunnerOptions { max_concurrent: 2, ..options() });
        let queries: Vec<InsightsQuery> = (0..6).map(|i| query(i * 60, i * 60 + 59)).collect();
        let all = futures_util::future::join_all(queries.iter().map(|q| runner.run(q))).await;
        assert!(all.iter().all(Result::is_ok));
        assert!(most.load(Ordering::SeqCst) <= 2, "at most 2 in flight, saw {}", most.load(Ordering::SeqCst));
        assert_eq!(runner.runs().len(), 6);
    }
}
