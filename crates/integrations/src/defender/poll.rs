//! Incremental reading of `alerts_v2`: every alert created or changed since the
//! last poll, each version once.
//!
//! A poll requests `lastUpdateDateTime ge {watermark - overlap}` and follows
//! `@odata.nextLink` while Graph sends one; a linked page without a link is the
//! last. When Graph sends no link at all, a full page is paged on
//! `lastUpdateDateTime` itself, because `alerts_v2` takes no
//! `$orderby`: the order of the page decides the next window.
//!
//! * Newest first (the documented order): the next request keeps the lower
//!   bound and adds `le {oldest timestamp of the page}`, skipping the alerts of
//!   that timestamp already read.
//! * Oldest first: the next request starts at `ge {newest timestamp}`, skipping
//!   the alerts of that timestamp already read.
//! * No order: `$skip` grows by a page.
//!
//! So alerts that share the boundary timestamp are neither lost nor read twice,
//! and an alert read twice anyway (the overlap, a next link that repeats) is
//! dropped by its id and `lastUpdateDateTime`.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use super::alert::Alert;
use super::client::GraphClient;
use super::config::{DefenderConfig, MAX_SKIP};
use super::error::DefenderError;

/// The position where polling resumes. It can be stored between runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PollCursor {
    /// The newest `lastUpdateDateTime` read; `None` before the first poll.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub watermark: Option<OffsetDateTime>,
    /// The version (`lastUpdateDateTime`) read of each alert updated within the
    /// overlap before the watermark, to drop the ones read again.
    #[serde(default)]
    pub seen: HashMap<String, OffsetDateTime>,
}

/// The alerts and counts of one poll.
#[derive(Debug, Clone, PartialEq)]
pub struct PollReport {
    /// New alerts and new versions of known alerts, in the order Graph sent them.
    pub alerts: Vec<Alert>,
    /// Graph requests sent, retries included.
    pub requests: u64,
    /// Pages received.
    pub pages: u32,
    /// Alerts received again and dropped as already read.
    pub duplicates: u32,
    /// Items that were not valid alerts, such as one without `id` or
    /// `lastUpdateDateTime`. Each is logged.
    pub malformed: u32,
    /// False when the poll stopped early (see [`PollReport::stop_reason`]).
    pub complete: bool,
    pub stop_reason: Option<String>,
}

/// The order of the timestamps in one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PageOrder {
    NewestFirst,
    OldestFirst,
    Unordered,
}

/// The window of the next request when paging on `lastUpdateDateTime`.
#[derive(Debug, Clone, PartialEq)]
struct Window {
    lower: OffsetDateTime,
    upper: Option<OffsetDateTime>,
    skip: u32,
}

/// Reads alerts incrementally from one tenant.
pub struct AlertPoller {
    client: GraphClient,
    alerts_url: Url,
    page_size: u32,
    max_pages: u32,
    initial_lookback: Duration,
    overlap: Duration,
    cursor: PollCursor,
}

impl AlertPoller {
    /// Creates a poller that starts from `cursor` (use `PollCursor::default()` for
    /// a first run).
    pub fn new(client: GraphClient, config: &DefenderConfig, cursor: PollCursor) -> Self {
        Self {
            client,
            alerts_url: config.alerts_url(),
            page_size: config.limits.page_size,
            max_pages: config.limits.max_pages_per_poll,
            initial_lookback: Duration::from_secs(config.initial_lookback_hours * 3_600),
            overlap: Duration::from_secs(config.overlap_secs),
            cursor,
        }
    }

    /// Returns where the next poll starts, to store it.
    pub fn cursor(&self) -> &PollCursor {
        &self.cursor
    }

    /// Returns the client, for its request count and credential check.
    pub fn client(&self) -> &GraphClient {
        &self.client
    }

    /// Reads every alert version added since the last poll.
    ///
    /// # Errors
    ///
    /// Returns the first request that failed after its retries. The cursor is
    /// then unchanged, so the next poll reads the same range again.
    pub async fn poll(&mut self) -> Result<PollReport, DefenderError> {
        let requests_before = self.client.requests_sent();
        let lower = match self.cursor.watermark {
            Some(watermark) => watermark - self.overlap,
            None => self.client.clock().now() - self.initial_lookback,
        };
        let mut window = Window {
            lower,
            upper: None,
            skip: 0,
        };
        let mut next_link: Option<Url> = None;
        let mut seen = self.cursor.seen.clone();
        let mut report = PollReport {
            alerts: Vec::new(),
            requests: 0,
            pages: 0,
            duplicates: 0,
            malformed: 0,
            complete: true,
            stop_reason: None,
        };
        // The newest timestamp of this poll, kept apart from the cursor until the
        // poll succeeds.
        let mut newest = self.cursor.watermark;

        loop {
            if report.pages >= self.max_pages {
                report.complete = false;
                report.stop_reason = Some(format!(
                    "read limits.max_pages_per_poll ({}) pages; the next poll reads the rest",
                    self.max_pages
                ));
                break;
            }
            let from_next_link = next_link.is_some();
            let url = match next_link.take() {
                Some(link) => link,
                None => self.window_url(&window),
            };
            let page = self.client.get_json(&url).await?;
            report.pages += 1;

            let items = page
                .get("value")
                .and_then(serde_json::Value::as_array)
                .ok_or_else(|| DefenderError::InvalidResponse {
                    url: url.to_string(),
                    detail: "the page has no \"value\" array".into(),
                })?;
            let timestamps = self.ingest_page(items, &mut seen, &mut report);
            if let Some(&max) = timestamps.iter().max() {
                newest = Some(newest.map_or(max, |known| known.max(max)));
            }

            if let Some(link) = page
                .get("@odata.nextLink")
                .and_then(serde_json::Value::as_str)
            {
                next_link = Some(self.checked_next_link(link)?);
                continue;
            }
            // A page reached through a next link that has none is the last one.
            if from_next_link || items.len() < self.page_size as usize {
                break;
            }
            if let Err(reason) = advance_window(&mut window, &timestamps, items.len()) {
                report.complete = false;
                tracing::warn!(reason = %reason, "stopped paging alerts_v2");
                report.stop_reason = Some(reason);
                break;
            }
        }

        report.requests = self.client.requests_sent() - requests_before;
        self.commit(newest, seen, report.complete);
        Ok(report)
    }

    /// Parses one page, keeps the versions not read before and returns the
    /// `lastUpdateDateTime` of every valid item, in page order.
    fn ingest_page(
        &self,
        items: &[serde_json::Value],
        seen: &mut HashMap<String, OffsetDateTime>,
        report: &mut PollReport,
    ) -> Vec<OffsetDateTime> {
        let mut timestamps = Vec::with_capacity(items.len());
        for item in items {
            let alert: Alert = match serde_json::from_value(item.clone()) {
                Ok(alert) => alert,
                Err(error) => {
                    report.malformed += 1;
                    let id = item
                        .get("id")
                        .and_then(serde_json::Value::as_str)
                        .unwrap_or("(none)");
                    tracing::warn!(alert_id = %id, error = %error, "skipped an alert that is not valid");
                    continue;
                }
            };
            timestamps.push(alert.last_update_date_time);
            match seen.get(&alert.id) {
                Some(&version) if version >= alert.last_update_date_time => report.duplicates += 1,
                _ => {
                    seen.insert(alert.id.clone(), alert.last_update_date_time);
                    report.alerts.push(alert);
                }
            }
        }
        timestamps
    }

    /// Moves the cursor after a poll. After an incomplete poll the watermark stays,
    /// so the next poll reads the same range again and only duplicates are dropped.
    fn commit(
        &mut self,
        newest: Option<OffsetDateTime>,
        mut seen: HashMap<String, OffsetDateTime>,
        complete: bool,
    ) {
        if complete {
            self.cursor.watermark = newest.or(self.cursor.watermark);
        }
        if let Some(watermark) = self.cursor.watermark {
            let horizon = watermark - self.overlap;
            seen.retain(|_, version| *version >= horizon);
        }
        self.cursor.seen = seen;
    }

    fn window_url(&self, window: &Window) -> Url {
        let mut filter = format!("lastUpdateDateTime ge {}", format_time(window.lower));
        if let Some(upper) = window.upper {
            filter.push_str(&format!(
                " and lastUpdateDateTime le {}",
                format_time(upper)
            ));
        }
        let mut url = self.alerts_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("$filter", &filter);
            query.append_pair("$top", &self.page_size.to_string());
            if window.skip > 0 {
                query.append_pair("$skip", &window.skip.to_string());
            }
        }
        url
    }

    fn checked_next_link(&self, link: &str) -> Result<Url, DefenderError> {
        let foreign = || DefenderError::ForeignNextLink {
            link: link.to_owned(),
            graph_base: self.client.graph_base().to_string(),
        };
        let url = Url::parse(link).map_err(|_| foreign())?;
        if self.client.is_graph_url(&url) {
            Ok(url)
        } else {
            Err(foreign())
        }
    }
}

/// Moves the window past a full page that came without a next link.
///
/// # Errors
///
/// Returns why paging cannot go on: the alerts sharing one timestamp, or an
/// unordered result, need a `$skip` above [`MAX_SKIP`].
fn advance_window(
    window: &mut Window,
    timestamps: &[OffsetDateTime],
    page_len: usize,
) -> Result<(), String> {
    match page_order(timestamps, window) {
        PageOrder::NewestFirst => {
            // Everything newer than the oldest timestamp of the page has been
            // read; continue below it, skipping the ones at it already read.
            let Some(&oldest) = timestamps.last() else {
                return Err("a full page had no valid alert".into());
            };
            let at_oldest = count_at(timestamps, oldest);
            if window.upper == Some(oldest) {
                window.skip += at_oldest;
            } else {
                window.upper = Some(oldest);
                window.skip = at_oldest;
            }
        }
        PageOrder::OldestFirst => {
            let Some(&newest) = timestamps.last() else {
                return Err("a full page had no valid alert".into());
            };
            let at_newest = count_at(timestamps, newest);
            if window.lower == newest {
                window.skip += at_newest;
            } else {
                window.lower = newest;
                window.skip = at_newest;
            }
        }
        PageOrder::Unordered => {
            window.skip += u32::try_from(page_len).unwrap_or(u32::MAX);
        }
    }
    if window.skip > MAX_SKIP {
        // NOTE: without @odata.nextLink, more than MAX_SKIP alerts with one
        // lastUpdateDateTime (or an unordered result longer than MAX_SKIP plus
        // a page) cannot be paged. The rest of that range is not read.
        return Err(format!(
            "paging needs $skip={} (above {MAX_SKIP}) because Graph sent no @odata.nextLink; alerts beyond it in this poll's range are not read",
            window.skip
        ));
    }
    Ok(())
}

/// Returns the order of a page. A page whose alerts all share the window's lower
/// bound continues an oldest-first walk; any other page of one timestamp is
/// treated as newest first. Both give the same next window.
fn page_order(timestamps: &[OffsetDateTime], window: &Window) -> PageOrder {
    let all_equal = timestamps.windows(2).all(|pair| pair[0] == pair[1]);
    if all_equal && window.upper.is_none() && timestamps.first() == Some(&window.lower) {
        PageOrder::OldestFirst
    } else if timestamps.windows(2).all(|pair| pair[0] >= pair[1]) {
        PageOrder::NewestFirst
    } else if timestamps.windows(2).all(|pair| pair[0] <= pair[1]) {
        PageOrder::OldestFirst
    } else {
        PageOrder::Unordered
    }
}

fn count_at(timestamps: &[OffsetDateTime], at: OffsetDateTime) -> u32 {
    let count = timestamps.iter().filter(|&&time| time == at).count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// Formats a time as an OData `DateTimeOffset` literal (RFC 3339, UTC).
fn format_time(time: OffsetDateTime) -> String {
    time.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| time.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn newest_first_page_moves_upper_bound() {
        let t1 = datetime!(2024-03-03 08:00 UTC);
        let t2 = datetime!(2024-03-03 09:00 UTC);
        let mut window = Window {
            lower: t1,
            upper: None,
            skip: 0,
        };
        advance_window(&mut window, &[t2, t2, t1, t1], 4).expect("advance");
        assert_eq!(
            window,
            Window {
                lower: t1,
                upper: Some(t1),
                skip: 2
            }
        );
    }

    #[test]
    fn tied_pages_accumulate_skip() {
        let t1 = datetime!(2024-03-03 08:00 UTC);
        let mut window = Window {
            lower: t1,
            upper: Some(t1),
            skip: 2,
        };
        advance_window(&mut window, &[t1, t1, t1], 3).expect("advance");
        assert_eq!(window.skip, 5);
    }

    #[test]
    fn oldest_first_page_moves_lower_bound() {
        let t1 = datetime!(2024-03-03 08:00 UTC);
        let t2 = datetime!(2024-03-03 09:00 UTC);
        let mut window = Window {
            lower: t1,
            upper: None,
            skip: 0,
        };
        advance_window(&mut window, &[t1, t2, t2], 3).expect("advance");
        assert_eq!(
            window,
            Window {
                lower: t2,
                upper: None,
                skip: 2
            }
        );
    }

    #[test]
    fn skip_above_limit_stops_paging() {
        let t1 = datetime!(2024-03-03 08:00 UTC);
        let mut window = Window {
            lower: t1,
            upper: Some(t1),
            skip: 400,
        };
        let error = advance_window(&mut window, &[t1; 200], 200).expect_err("skip 600");
        assert!(error.contains("$skip=600"), "{error}");
    }

    #[test]
    fn odata_time_literal_is_utc() {
        let time = datetime!(2024-03-03 10:00:00.1234567 +02:00);
        assert_eq!(format_time(time), "2024-03-03T08:00:00.1234567Z");
    }
}
