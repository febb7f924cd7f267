//! An ordered set of `(score, member)` that also answers "how many come before this one"
//! without walking them: the members live in sorted chunks of bounded size, so a rank is
//! a sum over the chunks before plus a binary search within one. A waiting room of
//! 100,000 users answers every position poll in microseconds.

/// Chunks split when they grow past twice this.
const CHUNK: usize = 256;

type Item = (i64, String);

#[derive(Debug, Default)]
pub(crate) struct RankedSet {
    chunks: Vec<Vec<Item>>,
    len: usize,
}

impl RankedSet {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The chunk where `item` is or would go.
    fn chunk_of(&self, item: &Item) -> usize {
        let idx = self
            .chunks
            .partition_point(|chunk| chunk.last().is_some_and(|last| last < item));
        idx.min(self.chunks.len().saturating_sub(1))
    }

    /// True when added (false when already there).
    pub(crate) fn insert(&mut self, item: Item) -> bool {
        if self.chunks.is_empty() {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let idx = self.chunk_of(&item);
        let chunk = &mut self.chunks[idx];
        let Err(pos) = chunk.binary_search(&item) else {
            return false;
        };
        chunk.insert(pos, item);
        self.len += 1;
        if chunk.len() > 2 * CHUNK {
            let upper = chunk.split_off(CHUNK);
            self.chunks.insert(idx + 1, upper);
        }
        true
    }

    /// True when it was there.
    pub(crate) fn remove(&mut self, item: &Item) -> bool {
        if self.chunks.is_empty() {
            return false;
        }
        let idx = self.chunk_of(item);
        let chunk = &mut self.chunks[idx];
        let Ok(pos) = chunk.binary_search(item) else {
            return false;
        };
        chunk.remove(pos);
        self.len -= 1;
        if chunk.is_empty() {
            self.chunks.remove(idx);
        }
        true
    }

    /// How many items sort before `item` (which need not be present).
    pub(crate) fn rank(&self, item: &Item) -> usize {
        if self.chunks.is_empty() {
            return 0;
        }
        let idx = self.chunk_of(item);
        let before: usize = self.chunks[..idx].iter().map(Vec::len).sum();
        let within = self.chunks[idx].partition_point(|x| x < item);
        before + within
    }

    pub(crate) fn first(&self) -> Option<&Item> {
        self.chunks.first().and_then(|chunk| chunk.first())
    }

    pub(crate) fn last(&self) -> Option<&Item> {
        self.chunks.last().and_then(|chunk| chunk.last())
    }

    pub(crate) fn pop_first(&mut self) -> Option<Item> {
        let first = self.first()?.clone();
        self.remove(&first);
        Some(first)
    }

    /// The items in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Item> {
        self.chunks.iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn agrees_with_a_btreeset() {
        let mut ranked = RankedSet::default();
        let mut plain = BTreeSet::new();
        // A deterministic shuffle of inserts and removals, enough to split many chunks.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for step in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let item = (
                i64::try_from(x % 5_000).unwrap_or(0),
                format!("m{}", x % 97),
            );
            if step % 3 == 2 {
                assert_eq!(ranked.remove(&item), plain.remove(&item));
            } else {
                assert_eq!(ranked.insert(item.clone()), plain.insert(item));
            }
            if step % 500 == 0 {
                let probe = (2_500, "m50".to_owned());
                assert_eq!(ranked.rank(&probe), plain.range(..probe).count());
            }
        }
        assert_eq!(ranked.len(), plain.len());
        assert!(ranked.iter().eq(plain.iter()));
        while let Some(first) = ranked.pop_first() {
            assert_eq!(Some(first), plain.pop_first());
        }
        assert!(plain.is_empty() && ranked.len() == 0);
    }
}
