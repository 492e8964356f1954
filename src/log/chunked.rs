//! [`Chunked`]: the entry storage behind [`MemoryLog`](super::MemoryLog).
//!
//! A log that grows by appends in one vector reallocates as it grows: each
//! doubling copies every entry it holds and touches fresh memory for all of
//! them. Chunked storage keeps entries in fixed-size chunks instead, so an
//! append never moves an entry that is already stored in a full-size chunk,
//! and a compaction frees whole chunks from the front. A log's first chunk
//! starts small and grows to full size (doubling), so that a log of a few
//! entries — an idle group of many — costs a few entries, not a chunk.

use std::collections::VecDeque;

use crate::types::{Entry, Index};

/// Entries per chunk: 1024 entries of 56 bytes, 56 KiB, below the size at
/// which the system allocator maps (and unmaps) memory for each chunk.
const CHUNK: usize = 1024;

/// A sequence of entries in fixed-size chunks. Every chunk except the first
/// and the last holds exactly [`CHUNK`] entries; the first may hold fewer
/// (entries were removed from the front), the last may hold fewer (not yet
/// filled). Chunks emptied by a compaction or a truncation are kept for
/// reuse, as a vector keeps its capacity.
#[derive(Clone, Debug, Default)]
pub(crate) struct Chunked {
    chunks: VecDeque<Vec<Entry>>,
    len: usize,
    /// Empty chunks, ready for appends.
    spare: Vec<Vec<Entry>>,
}

impl Chunked {
    /// Storage with room for `entries` entries before it allocates.
    pub(crate) fn with_capacity(entries: usize) -> Self {
        let n = entries.div_ceil(CHUNK);
        Self { chunks: VecDeque::with_capacity(n), len: 0, spare: (0..n).map(|_| Vec::with_capacity(CHUNK)).collect() }
    }

    /// An empty chunk: a spare one, or a new one (small while it is the
    /// log's only chunk: it grows on demand).
    fn new_chunk(&mut self) -> Vec<Entry> {
        match self.spare.pop() {
            Some(chunk) => chunk,
            None if self.chunks.is_empty() => Vec::new(),
            None => Vec::with_capacity(CHUNK),
        }
    }

    /// Makes room for `n` more entries in `chunk` (which holds at most
    /// `CHUNK - n`), growing a small chunk eightfold (4, 32, 256, then
    /// `CHUNK`): a young log (thousands of groups, each a few hundred
    /// entries long) copies each entry about once in seven as it grows,
    /// where doubling would copy it once.
    #[inline]
    fn room(chunk: &mut Vec<Entry>, n: usize) {
        if chunk.capacity() - chunk.len() < n {
            Self::grow(chunk, n);
        }
    }

    /// [`room`](Self::room) when the chunk must grow, out of line.
    fn grow(chunk: &mut Vec<Entry>, n: usize) {
        let need = chunk.len() + n;
        let mut want = chunk.capacity().max(4);
        while want < need {
            want *= 8;
        }
        let want = want.min(CHUNK).max(need);
        chunk.reserve_exact(want - chunk.len());
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Chunk and offset of position `p` (which must be below `len`).
    fn locate(&self, p: usize) -> (usize, usize) {
        let first = self.chunks[0].len();
        if p < first {
            (0, p)
        } else {
            let q = p - first;
            (1 + q / CHUNK, q % CHUNK)
        }
    }

    /// The entry at position `p`, if any. Positions in the last chunk (the
    /// log's tail, where the node looks most) are found without dividing.
    #[inline]
    pub(crate) fn get(&self, p: usize) -> Option<&Entry> {
        if p >= self.len {
            return None;
        }
        let last = self.chunks.back()?;
        match p.checked_sub(self.len - last.len()) {
            Some(o) => last.get(o),
            None => {
                let (c, o) = self.locate(p);
                Some(&self.chunks[c][o])
            }
        }
    }

    /// The entries at positions `lo..hi` (which must be within `len`) as
    /// one slice, when they are stored in one chunk (or the range is empty).
    pub(crate) fn contiguous(&self, lo: usize, hi: usize) -> Option<&[Entry]> {
        if lo >= hi {
            return Some(&[]);
        }
        let (c, o) = self.locate(lo);
        self.chunks[c].get(o..o + (hi - lo))
    }

    /// The entries at positions `lo..hi` (which must be within `len`), in
    /// order, as contiguous slices.
    pub(crate) fn slices(&self, lo: usize, hi: usize) -> impl Iterator<Item = &[Entry]> {
        let (mut c, mut o) = if lo < hi { self.locate(lo) } else { (0, 0) };
        let mut left = hi.saturating_sub(lo);
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let chunk = &self.chunks[c];
            let n = (chunk.len() - o).min(left);
            let s = &chunk[o..o + n];
            left -= n;
            (c, o) = (c + 1, 0);
            Some(s)
        })
    }

    /// The entries at positions `lo..hi` (which must be within `len`), in
    /// order, one by one.
    pub(crate) fn range(&self, lo: usize, hi: usize) -> impl ExactSizeIterator<Item = &Entry> {
        ExactLen { inner: self.slices(lo, hi).flatten(), left: hi.saturating_sub(lo) }
    }

    /// Appends clones of the entries at positions `range` (within `len`)
    /// to `out`, stopping before an entry that would take their total
    /// size past `max_bytes` (at least one): [`RaftLog::entries`](super::RaftLog::entries)
    /// for the logs stored here. Copies slice by slice, not entry by entry.
    #[inline]
    pub(crate) fn clone_into(&self, range: std::ops::Range<usize>, max_bytes: u64, out: &mut Vec<Entry>) {
        if let Some(slice) = self.contiguous(range.start, range.end) {
            super::clone_fitting(slice, max_bytes, out);
            return;
        }
        let n = super::fitting(self.range(range.start, range.end), max_bytes);
        out.reserve(n);
        for slice in self.slices(range.start, range.start + n) {
            out.extend_from_slice(slice);
        }
    }

    /// The entries `lo..hi` of a log whose first stored entry has index
    /// `base + 1`, as one slice of the last chunk (the log's tail), when
    /// they all lie there and `lo < hi`:
    /// [`RaftLog::entry_run`](super::RaftLog::entry_run) for the logs
    /// stored here.
    #[inline]
    pub(crate) fn tail_run(&self, base: Index, lo: Index, hi: Index) -> Option<&[Entry]> {
        let n = usize::try_from(hi.checked_sub(lo)?).ok().filter(|&n| n > 0)?;
        let start = usize::try_from(lo.checked_sub(base.checked_add(1)?)?).ok()?;
        self.in_last_chunk(start, n)
    }

    /// The `n` entries from position `start` as one slice of the last
    /// chunk, if they all lie there.
    #[inline]
    fn in_last_chunk(&self, start: usize, n: usize) -> Option<&[Entry]> {
        let last = self.chunks.back()?;
        let o = start.checked_sub(self.len - last.len())?;
        last.get(o..o.checked_add(n)?)
    }

    /// Hands the entries at positions `range` (within `len`) to `f` by
    /// reference, as contiguous slices in order:
    /// [`RaftLog::visit_entries`](super::RaftLog::visit_entries) for the
    /// logs stored here.
    #[inline]
    pub(crate) fn visit(&self, range: std::ops::Range<usize>, f: &mut dyn FnMut(&[Entry])) {
        if range.is_empty() {
            return;
        }
        // The common case, a range at the tail: one slice of the last chunk.
        if let Some(slice) = self.in_last_chunk(range.start, range.len()) {
            f(slice);
            return;
        }
        for slice in self.slices(range.start, range.end) {
            f(slice);
        }
    }

    /// Every entry, in order.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = &Entry> {
        self.range(0, self.len)
    }

    /// Storage holding `entries`, in order.
    #[cfg(feature = "persistence")]
    pub(crate) fn from_vec(mut entries: Vec<Entry>) -> Self {
        let mut c = Self::default();
        c.append(&mut entries);
        c
    }

    /// Removes the entries from position `at` on, passing each to `gone`
    /// in order (no vector is built for them).
    pub(crate) fn truncate_with(&mut self, at: usize, mut gone: impl FnMut(Entry)) {
        if at >= self.len {
            return;
        }
        let (c, o) = self.locate(at);
        self.chunks[c].drain(o..).for_each(&mut gone);
        for mut chunk in self.chunks.drain(c + 1..) {
            chunk.drain(..).for_each(&mut gone);
            self.spare.push(chunk);
        }
        if self.chunks[c].is_empty() {
            if let Some(chunk) = self.chunks.pop_back() {
                self.spare.push(chunk);
            }
        }
        self.len = at;
    }

    /// Makes room for one more entry at the end, so that the
    /// [`push_reserved`](Self::push_reserved) after it calls nothing: an
    /// entry built between a call and its store is spilled to the stack
    /// and copied again (docs/BENCHMARKS.md, "Store-forwarding stalls").
    #[inline]
    pub(crate) fn reserve_one(&mut self) {
        match self.chunks.back_mut() {
            Some(last) if last.len() < last.capacity() => {}
            Some(last) if last.len() < CHUNK => Self::room(last, 1),
            _ => {
                let mut chunk = self.new_chunk();
                Self::room(&mut chunk, 1);
                self.chunks.push_back(chunk);
            }
        }
    }

    /// Appends one entry after [`reserve_one`](Self::reserve_one).
    #[inline]
    pub(crate) fn push_reserved(&mut self, entry: Entry) {
        debug_assert!(self.chunks.back().is_some_and(|c| c.len() < c.capacity()), "push without reserve_one");
        if let Some(last) = self.chunks.back_mut() {
            last.push(entry);
            self.len += 1;
        }
    }

    /// Moves every entry of `entries` to the end, leaving it empty.
    #[inline]
    pub(crate) fn append(&mut self, entries: &mut Vec<Entry>) {
        self.len += entries.len();
        if let Some(last) = self.chunks.back_mut() {
            if CHUNK - last.len() >= entries.len() {
                // The common case: one copy of the batch into the last chunk.
                Self::room(last, entries.len());
                last.append(entries);
                return;
            }
        }
        let mut rest = entries.drain(..);
        while rest.len() > 0 {
            match self.chunks.back_mut() {
                Some(last) if last.len() < CHUNK => {
                    let room = (CHUNK - last.len()).min(rest.len());
                    Self::room(last, room);
                    last.extend(rest.by_ref().take(room));
                }
                _ => {
                    let chunk = self.new_chunk();
                    self.chunks.push_back(chunk);
                }
            }
        }
    }

    /// Removes the entries from position `at` on and returns them in order.
    pub(crate) fn split_off(&mut self, at: usize) -> Vec<Entry> {
        let mut removed = Vec::with_capacity(self.len.saturating_sub(at));
        self.truncate_with(at, |e| removed.push(e));
        removed
    }

    /// Removes the first `n` entries (at most `len`), passing them in order
    /// to `keep`, which may stop taking them (the rest are dropped).
    pub(crate) fn drain_front(&mut self, n: usize, mut keep: impl FnMut(Entry) -> bool) {
        let mut left = n.min(self.len);
        self.len -= left;
        let mut keeping = true;
        while left > 0 {
            let first = &mut self.chunks[0];
            let k = first.len().min(left);
            for e in first.drain(..k) {
                keeping = keeping && keep(e);
            }
            left -= k;
            if first.is_empty() {
                if let Some(chunk) = self.chunks.pop_front() {
                    self.spare.push(chunk);
                }
            }
        }
    }
}

/// An iterator of known length.
struct ExactLen<I> {
    inner: I,
    left: usize,
}

impl<I: Iterator> Iterator for ExactLen<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next()?;
        self.left -= 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<I: Iterator> ExactSizeIterator for ExactLen<I> {}

impl std::hash::Hash for Chunked {
    /// Hashes like the vector of its entries would (length, then each), so
    /// two logs with equal entries hash alike however they are chunked.
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.len().hash(h);
        for e in self.iter() {
            e.hash(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u64) -> Entry {
        Entry::normal(1, index, bytes::Bytes::from_static(b"x"))
    }

    fn indexes(c: &Chunked) -> Vec<u64> {
        c.iter().map(|e| e.index).collect()
    }

    /// A run is lent only when it lies whole in the last chunk, counted
    /// from the index after `base`.
    #[test]
    fn a_tail_run_lies_whole_in_the_last_chunk() {
        let mut c = Chunked::default();
        let mut batch: Vec<Entry> = (11..=10 + CHUNK as u64 + 100).map(e).collect();
        c.append(&mut batch);
        let last = 10 + CHUNK as u64 + 100;
        let run = |lo, hi| c.tail_run(10, lo, hi).map(|r| r.iter().map(|e| e.index).collect::<Vec<_>>());
        assert_eq!(run(last, last + 1), Some(vec![last]));
        assert_eq!(run(last - 99, last + 1), Some((last - 99..=last).collect()));
        assert_eq!(run(last - 100, last + 1), None, "one entry in the chunk before");
        assert_eq!(run(last, last + 2), None, "past the end");
        assert_eq!(run(last, last), None, "empty");
        assert_eq!(run(5, 7), None, "before the first entry");
        assert_eq!(c.tail_run(u64::MAX, 1, 2), None, "no index after the base");
    }

    #[test]
    fn matches_a_vector_across_chunk_boundaries() {
        for c in [Chunked::default(), Chunked::with_capacity(3000)] {
            matches_a_vector(c);
        }
    }

    #[cfg(feature = "persistence")]
    #[test]
    fn from_vec_keeps_the_order() {
        let c = Chunked::from_vec((1..=3000).map(e).collect());
        assert_eq!(indexes(&c), (1..=3000).collect::<Vec<_>>());
    }

    /// A young log's only chunk grows eightfold up to a full chunk, so a
    /// few hundred entries are copied a handful of times, not once per
    /// doubling.
    #[test]
    fn a_young_chunk_grows_eightfold() {
        let mut c = Chunked::default();
        let mut seen = Vec::new();
        for i in 1..=1500 {
            c.append(&mut vec![e(i)]);
            let cap = c.chunks[0].capacity();
            if seen.last() != Some(&cap) {
                seen.push(cap);
            }
        }
        assert_eq!(seen, [4, 32, 256, CHUNK]);
    }

    fn matches_a_vector(mut c: Chunked) {
        let mut model: Vec<u64> = Vec::new();
        let mut next = 1;
        for (push, cut, front) in
            [(1500, 1200, 100), (3000, 4000, 2000), (10, 1, 0), (2048, 2000, 1023), (5000, 4100, 1)]
        {
            let mut batch: Vec<Entry> = (next..next + push).map(e).collect();
            model.extend(next..next + push);
            next += push;
            c.append(&mut batch);
            assert!(batch.is_empty());
            let cut = cut.min(model.len());
            let removed: Vec<u64> = if push % 2 == 0 {
                c.split_off(cut).iter().map(|x| x.index).collect()
            } else {
                let mut gone = Vec::new();
                c.truncate_with(cut, |x| gone.push(x.index));
                gone
            };
            assert_eq!(removed, model[cut..].to_vec());
            model.truncate(cut);
            let mut kept = Vec::new();
            c.drain_front(front, |x| {
                kept.push(x.index);
                kept.len() < 5
            });
            let front = front.min(model.len());
            assert_eq!(kept, model[..front.min(5)].to_vec());
            model.drain(..front);
            assert_eq!(indexes(&c), model);
            assert_eq!(c.len(), model.len());
            assert_eq!(c.is_empty(), model.is_empty());
            for p in [0, 1, 1023, 1024, 1025, 2049, model.len().saturating_sub(1), model.len()] {
                assert_eq!(c.get(p).map(|x| x.index), model.get(p).copied());
            }
            let n = model.len();
            for (lo, hi) in [(0, n), (3, 1030), (1024, 1024), (n / 2, n), (n.saturating_sub(1), n)] {
                let (lo, hi) = (lo.min(n), hi.min(n).max(lo.min(n)));
                let got: Vec<u64> = c.slices(lo, hi).flatten().map(|x| x.index).collect();
                assert_eq!(got, model[lo..hi].to_vec());
                assert_eq!(c.range(lo, hi).len(), hi - lo);
                if let Some(one) = c.contiguous(lo, hi) {
                    assert!(one.iter().map(|x| x.index).eq(model[lo..hi].iter().copied()));
                }
                assert!(c.range(lo, hi).map(|x| x.index).eq(model[lo..hi].iter().copied()));
            }
        }
    }
}
