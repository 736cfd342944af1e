//! The cache of registration dates, behind a trait so that the correspondence
//! graph can store it later.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, PoisonError};

use time::OffsetDateTime;

/// The result of an RDAP look-up for a domain, with its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedRegistration {
    /// The `registration` event date; `None` when the server had no such event
    /// or did not know the domain.
    pub registered: Option<OffsetDateTime>,
    /// When the look-up was made.
    pub fetched_at: OffsetDateTime,
}

/// A store of look-up results by registrable domain (lowercase A-labels).
pub trait DomainAgeCache: Send + Sync {
    /// Returns the stored result for a domain.
    fn get(&self, domain: &str) -> Option<CachedRegistration>;

    /// Stores a result, replacing any earlier one.
    fn put(&self, domain: &str, entry: CachedRegistration);
}

/// An in-memory least-recently-used cache with a fixed capacity.
#[derive(Debug)]
pub struct LruDomainAgeCache {
    capacity: usize,
    state: Mutex<LruState>,
}

#[derive(Debug, Default)]
struct LruState {
    entries: HashMap<String, (CachedRegistration, u64)>,
    /// Use tick to domain, oldest first.
    recency: BTreeMap<u64, String>,
    tick: u64,
}

impl LruState {
    fn touch(&mut self, domain: &str) -> u64 {
        self.tick += 1;
        let tick = self.tick;
        if let Some((_, old_tick)) = self.entries.get_mut(domain) {
            self.recency.remove(old_tick);
            *old_tick = tick;
        }
        self.recency.insert(tick, domain.to_owned());
        tick
    }
}

impl LruDomainAgeCache {
    /// Creates a cache that keeps at most `capacity` domains (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: Mutex::new(LruState::default()),
        }
    }

    /// Returns the number of domains stored.
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }

    /// Returns whether no domain is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl DomainAgeCache for LruDomainAgeCache {
    fn get(&self, domain: &str) -> Option<CachedRegistration> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = state.entries.get(domain)?.0;
        state.touch(domain);
        Some(entry)
    }

    fn put(&self, domain: &str, entry: CachedRegistration) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(stored) = state.entries.get_mut(domain) {
            stored.0 = entry;
            state.touch(domain);
            return;
        }
        while state.entries.len() >= self.capacity {
            let Some((_, oldest)) = state.recency.pop_first() else {
                break;
            };
            state.entries.remove(&oldest);
        }
        state.entries.insert(domain.to_owned(), (entry, 0));
        state.touch(domain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn entry() -> CachedRegistration {
        CachedRegistration {
            registered: None,
            fetched_at: datetime!(2024-03-03 08:00 UTC),
        }
    }

    #[test]
    fn least_recently_used_is_evicted() {
        let cache = LruDomainAgeCache::new(2);
        cache.put("a.example", entry());
        cache.put("b.example", entry());
        assert!(cache.get("a.example").is_some());
        cache.put("c.example", entry());
        assert!(
            cache.get("b.example").is_none(),
            "b was used least recently"
        );
        assert!(cache.get("a.example").is_some());
        assert!(cache.get("c.example").is_some());
        assert_eq!(cache.len(), 2);
    }
}
