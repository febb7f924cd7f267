//! The sparse maths of the recommender, hand-rolled on `std`: a compressed-row matrix
//! with `u32` indices, BM25 weighting, cosine similarity with shrinkage keeping only the
//! top K neighbours of each row (never an item × item dense matrix), and the top N of a
//! score vector. Rows are shared out over the machine's cores with scoped threads.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A sparse matrix in compressed rows: row `r` holds `indices[indptr[r]..indptr[r + 1]]`
/// (sorted, distinct) with `values` beside them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Csr {
    pub rows: usize,
    pub cols: usize,
    pub indptr: Vec<u32>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csr {
    /// Builds the matrix from `(row, col, value)` entries; repeated cells are summed and
    /// cells that come to zero left out.
    pub fn from_entries(rows: usize, cols: usize, mut entries: Vec<(u32, u32, f32)>) -> Self {
        entries.sort_unstable_by_key(|&(r, c, _)| (r, c));
        let mut indptr = vec![0_u32; rows + 1];
        let mut indices = Vec::with_capacity(entries.len());
        let mut values: Vec<f32> = Vec::with_capacity(entries.len());
        let mut last: Option<(u32, u32)> = None;
        for (r, c, v) in entries {
            if last == Some((r, c)) {
                if let Some(value) = values.last_mut() {
                    *value += v;
                }
                continue;
            }
            last = Some((r, c));
            indices.push(c);
            values.push(v);
            indptr[r as usize + 1] += 1;
        }
        for r in 0..rows {
            indptr[r + 1] += indptr[r];
        }
        let matrix = Self {
            rows,
            cols,
            indptr,
            indices,
            values,
        };
        matrix.without_zeros()
    }

    fn without_zeros(self) -> Self {
        if self.values.iter().all(|v| *v != 0.0) {
            return self;
        }
        let entries = (0..self.rows)
            .flat_map(|r| {
                let (cols, vals) = self.row(r);
                cols.iter()
                    .zip(vals)
                    .filter(|(_, v)| **v != 0.0)
                    .map(move |(c, v)| (row_index(r), *c, *v))
                    .collect::<Vec<_>>()
            })
            .collect();
        Self::from_entries(self.rows, self.cols, entries)
    }

    /// Row `r`'s column indices and values.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (start, end) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
        (&self.indices[start..end], &self.values[start..end])
    }

    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// The transpose, in compressed rows again.
    pub fn transpose(&self) -> Self {
        let mut counts = vec![0_u32; self.cols + 1];
        for &c in &self.indices {
            counts[c as usize + 1] += 1;
        }
        for c in 0..self.cols {
            counts[c + 1] += counts[c];
        }
        let indptr = counts.clone();
        let mut next = counts;
        let mut indices = vec![0_u32; self.nnz()];
        let mut values = vec![0_f32; self.nnz()];
        for r in 0..self.rows {
            let (cols, vals) = self.row(r);
            for (c, v) in cols.iter().zip(vals) {
                let at = next[*c as usize] as usize;
                indices[at] = row_index(r);
                values[at] = *v;
                next[*c as usize] += 1;
            }
        }
        Self {
            rows: self.cols,
            cols: self.rows,
            indptr,
            indices,
            values,
        }
    }

    /// BM25 weighting of the rows as documents and the columns as terms (as tuned
    /// item-kNN weights its item × user matrix): a cell saturates with `k1`, long rows
    /// are damped by `b`, and columns present in many rows count less.
    pub fn bm25(&self, k1: f32, b: f32) -> Self {
        let n = self.rows.max(1) as f32;
        let mut df = vec![0_u32; self.cols];
        for &c in &self.indices {
            df[c as usize] += 1;
        }
        let idf: Vec<f32> = df
            .iter()
            .map(|&d| (n.ln() - (1.0 + d as f32).ln()).max(0.0) + f32::EPSILON)
            .collect();
        let lengths: Vec<f32> = (0..self.rows).map(|r| self.row(r).1.iter().sum()).collect();
        let average = (lengths.iter().sum::<f32>() / n).max(f32::EPSILON);
        let mut weighted = self.clone();
        for (r, length) in lengths.iter().enumerate() {
            let norm = (1.0 - b) + b * length / average;
            let (start, end) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
            for k in start..end {
                let v = self.values[k];
                weighted.values[k] =
                    v * (k1 + 1.0) / (k1 * norm + v) * idf[self.indices[k] as usize];
            }
        }
        weighted
    }

    /// Each row's Euclidean norm.
    pub fn row_norms(&self) -> Vec<f32> {
        (0..self.rows)
            .map(|r| self.row(r).1.iter().map(|v| v * v).sum::<f32>().sqrt())
            .collect()
    }
}

fn row_index(r: usize) -> u32 {
    u32::try_from(r).unwrap_or(u32::MAX)
}

/// Each row's `k` most similar other rows of `rows` (cosine of the two rows, with
/// `shrinkage` added to the product of their norms), best first. `by_col` is the
/// transpose of `rows`; when `posting` is given, only the first `posting` entries of
/// each of its rows are followed (candidates through very common columns are sampled,
/// which bounds the cost of a user × user pass).
pub fn top_neighbours(
    rows: &Csr,
    by_col: &Csr,
    k: usize,
    shrinkage: f32,
    posting: Option<usize>,
) -> Vec<Vec<(u32, f32)>> {
    let norms = rows.row_norms();
    par_rows(
        rows.rows,
        |scratch: &mut Scratch, r| {
            let (cols, vals) = rows.row(r);
            for (c, w) in cols.iter().zip(vals) {
                let (others, their) = by_col.row(*c as usize);
                let take = posting.unwrap_or(others.len()).min(others.len());
                for (o, v) in others[..take].iter().zip(&their[..take]) {
                    scratch.add(*o, w * v);
                }
            }
            let own = row_index(r);
            let mut found: Vec<(u32, f32)> = scratch
                .drain()
                .filter(|(o, _)| *o != own)
                .map(|(o, dot)| {
                    let denominator = norms[r] * norms[o as usize] + shrinkage;
                    (
                        o,
                        if denominator > 0.0 {
                            dot / denominator
                        } else {
                            0.0
                        },
                    )
                })
                .filter(|(_, s)| *s > 0.0)
                .collect();
            keep_top(&mut found, k);
            found
        },
        rows.cols.max(rows.rows),
    )
}

/// Keeps the `k` highest scores, best first (ties by index, so runs repeat exactly).
pub fn keep_top(scores: &mut Vec<(u32, f32)>, k: usize) {
    let better = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if scores.len() > k && k > 0 {
        scores.select_nth_unstable_by(k - 1, better);
        scores.truncate(k);
    } else if k == 0 {
        scores.clear();
    }
    scores.sort_unstable_by(better);
}

/// A dense accumulator with the list of cells it touched, reused from row to row.
pub struct Scratch {
    sums: Vec<f32>,
    touched: Vec<u32>,
}

impl Scratch {
    pub fn new(size: usize) -> Self {
        Self {
            sums: vec![0.0; size],
            touched: Vec::new(),
        }
    }

    pub fn add(&mut self, at: u32, value: f32) {
        let cell = &mut self.sums[at as usize];
        if *cell == 0.0 {
            self.touched.push(at);
        }
        *cell += value;
        if *cell == 0.0 {
            // Keep it listed: a later add must not list it twice.
            *cell = f32::MIN_POSITIVE;
        }
    }

    /// Every touched cell with its sum; the accumulator is empty again afterwards.
    pub fn drain(&mut self) -> impl Iterator<Item = (u32, f32)> + '_ {
        let sums = &mut self.sums;
        self.touched.drain(..).map(move |at| {
            let sum = std::mem::take(&mut sums[at as usize]);
            (at, sum)
        })
    }
}

/// Runs `work` for every row `0..rows` on all cores, each thread with its own
/// [`Scratch`] of `width` cells, and returns the answers in row order.
pub fn par_rows<T, F>(rows: usize, work: F, width: usize) -> Vec<T>
where
    T: Send + Default,
    F: Fn(&mut Scratch, usize) -> T + Sync,
{
    const BLOCK: usize = 64;
    let threads = std::thread::available_parallelism()
        .map(std::num::NonZeroUsize::get)
        .unwrap_or(1)
        .min(rows.div_ceil(BLOCK).max(1));
    let next = AtomicUsize::new(0);
    let mut parts: Vec<Vec<(usize, T)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut scratch = Scratch::new(width);
                    let mut done = Vec::new();
                    loop {
                        let start = next.fetch_add(BLOCK, Ordering::Relaxed);
                        if start >= rows {
                            return done;
                        }
                        for r in start..(start + BLOCK).min(rows) {
                            done.push((r, work(&mut scratch, r)));
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut out: Vec<T> = (0..rows).map(|_| T::default()).collect();
    for part in &mut parts {
        for (r, answer) in part.drain(..) {
            out[r] = answer;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Csr {
        // Users × items: users 0 and 1 share items 0 and 1; user 2 has item 2 only.
        Csr::from_entries(
            3,
            3,
            vec![
                (0, 0, 1.0),
                (0, 1, 1.0),
                (1, 0, 2.0),
                (1, 1, 1.0),
                (2, 2, 1.0),
                (0, 0, 1.0),
            ],
        )
    }

    #[test]
    fn entries_are_merged_and_transposed() {
        let m = small();
        assert_eq!(m.row(0), (&[0, 1][..], &[2.0, 1.0][..]));
        let t = m.transpose();
        assert_eq!(t.row(0), (&[0, 1][..], &[2.0, 2.0][..]));
        assert_eq!(t.row(2), (&[2][..], &[1.0][..]));
        assert_eq!(t.transpose(), m);
    }

    #[test]
    fn neighbours_are_the_rows_that_share_columns() {
        let items = small().transpose();
        let users = items.transpose();
        let near = top_neighbours(&items, &users, 5, 0.0, None);
        assert_eq!(near[0].len(), 1);
        assert_eq!(near[0][0].0, 1);
        assert!(near[0][0].1 > 0.9 && near[0][0].1 <= 1.0 + 1e-6);
        assert!(near[2].is_empty(), "item 2 shares no user");
        let shrunk = top_neighbours(&items, &users, 5, 10.0, None);
        assert!(shrunk[0][0].1 < near[0][0].1);
    }

    #[test]
    fn bm25_damps_common_columns() {
        let items = small().transpose();
        let weighted = items.bm25(1.2, 0.75);
        assert_eq!(weighted.nnz(), items.nnz());
        assert!(weighted.values.iter().all(|v| *v > 0.0));
    }

    #[test]
    fn the_top_is_kept_in_order() {
        let mut scores = vec![(0, 0.1), (1, 0.9), (2, 0.5), (3, 0.9)];
        keep_top(&mut scores, 3);
        assert_eq!(scores, vec![(1, 0.9), (3, 0.9), (2, 0.5)]);
    }
}
