//! The background crawler of `maintain`: reclaims expired and flushed items a bounded slice at
//! a time.
//!
//! Owns: the crawler's position (page slot and chunk) and the `crawler_*` counters of its
//! sweep. Must not touch: eviction, page moves, or the operator walks of `walk.rs` (which
//! visit items for `lru_crawler metadump` and friends).

use super::Partition;
use crate::item::{self, Header};

impl Partition {
    /// The crawler: examines up to `budget` chunks from where it stopped, reclaiming dead items.
    pub(super) fn crawl(&mut self, budget: usize) -> usize {
        if self.slabs.page_count() == 0 {
            return 0;
        }
        let now = self.clock.now();
        let mut examined = 0;
        let mut empty_slots = 0;
        while examined < budget && empty_slots <= self.slabs.page_slots() {
            if self.crawl_page >= self.slabs.page_slots() {
                self.crawl_page = 0;
                self.crawl_chunk = 0;
            }
            if !self.slabs.has_page(self.crawl_page) {
                self.crawl_page += 1;
                self.crawl_chunk = 0;
                empty_slots += 1;
                continue;
            }
            // The handles are computed, not borrowed: reclaiming while walking them is fine.
            let mut handles = self
                .slabs
                .page_handles(self.crawl_page as u32)
                .skip(self.crawl_chunk)
                .take(budget - examined)
                .peekable();
            if handles.peek().is_none() {
                self.crawl_page += 1;
                self.crawl_chunk = 0;
                continue;
            }
            for handle in handles {
                examined += 1;
                self.crawl_chunk += 1;
                let chunk = self.slabs.chunk(handle);
                if !item::is_head(chunk) {
                    continue;
                }
                self.counters.crawler_items_checked += 1;
                let header = Header::read(chunk, self.cas_enabled);
                if let Some(death) = self.death(&header, now) {
                    self.counters.crawler_reclaimed += 1;
                    self.class_counters(handle).crawler_reclaimed += 1;
                    self.free_dead(handle, &header, death);
                }
            }
        }
        examined
    }
}
