"""The side-by-side half of bench/recs.sh: PyPI `implicit`'s item-kNN recommenders
(cosine and BM25) on the CSV `matsuri dev gen-activity` wrote, with the split and the
scoring of matsuri's own offline evaluation: kinds weighted view 1, cart_add 3,
purchase 5; each user's events after their last one minus a day held out; the held-out
items the user had not seen before are the truth; ten recommendations leaving out what
the user saw in training, padded with the most popular unseen items (as matsuri does);
P@10 and NDCG@10 averaged over the users with held-out items."""

import sys
import time

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

DAY_MS = 86_400_000
WEIGHTS = {"view": 1.0, "cart_add": 3.0, "purchase": 5.0}


def load(path):
    users, items, weights, at = {}, {}, [], []
    rows, cols = [], []
    with open(path) as f:
        next(f)
        for line in f:
            user, product, kind, when = line.rstrip("\n").split(",")
            w = WEIGHTS.get(kind)
            if w is None or not product:
                continue
            rows.append(users.setdefault(user, len(users)))
            cols.append(items.setdefault(product, len(items)))
            weights.append(w)
            at.append(int(when))
    return (np.array(rows, dtype=np.int32), np.array(cols, dtype=np.int32),
            np.array(weights, dtype=np.float32), np.array(at, dtype=np.int64), len(users), len(items))


def main(path):
    rows, cols, weights, at, n_users, n_items = load(path)
    last = np.full(n_users, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(last, rows, at)
    held = at > last[rows] - DAY_MS
    train = sp.csr_matrix((weights[~held], (rows[~held], cols[~held])), shape=(n_users, n_items))
    train.sum_duplicates()
    test = sp.csr_matrix((np.ones(held.sum(), dtype=np.float32), (rows[held], cols[held])), shape=(n_users, n_items))
    test.sum_duplicates()
    test = sp.csr_matrix(test - test.multiply(train > 0))
    test.eliminate_zeros()
    evaluated = np.flatnonzero(np.diff(test.indptr) > 0)
    popular = np.argsort(-np.asarray((train > 0).sum(axis=0)).ravel(), kind="stable")
    print(f"{len(rows)} events, {n_users} users, {n_items} items, {len(evaluated)} users evaluated")
    for name, model in [("cosine", CosineRecommender(K=50)), ("bm25", BM25Recommender(K=50, K1=1.2, B=0.75))]:
        start = time.perf_counter()
        model.fit(train, show_progress=False)
        fitted = time.perf_counter()
        ids, _ = model.recommend(np.arange(n_users), train, N=10, filter_already_liked_items=True)
        done = time.perf_counter()
        precision, ndcg = 0.0, 0.0
        for u in evaluated:
            seen = set(train.indices[train.indptr[u]:train.indptr[u + 1]])
            truth = set(test.indices[test.indptr[u]:test.indptr[u + 1]])
            ours = [int(j) for j in ids[u] if j >= 0 and j not in seen][:10]
            for j in popular:
                if len(ours) >= 10:
                    break
                if j not in seen and j not in ours:
                    ours.append(int(j))
            hits = [1.0 if j in truth else 0.0 for j in ours]
            precision += sum(hits) / 10
            dcg = sum(h / np.log2(r + 2) for r, h in enumerate(hits))
            ideal = sum(1 / np.log2(r + 2) for r in range(min(len(truth), 10)))
            ndcg += dcg / ideal
        n = max(len(evaluated), 1)
        print(f"implicit {name}: fit {fitted - start:.1f} s, recommend-all {done - fitted:.1f} s, "
              f"total {done - start:.1f} s, P@10 {precision / n:.4f}, NDCG@10 {ndcg / n:.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
