//! One story, run against both backends of the `db` port: SQLite always, PostgreSQL when
//! `MATSURI_TEST_POSTGRES_URL` is set (in CI it must be). It covers what the domains
//! build on: multi-row statements and `IN` lists, [`Statements`] sent together inside a
//! transaction (all of them or, rolled back, none), sequences drawn by many tasks at
//! once, and the batch tasks of [`batches`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;

use matsuri_core::config::DatabaseSettings;
use matsuri_db::{
    Db, Dialect, MIGRATIONS, Param, Statements, batches, is_unique_violation, parameter_list,
    rows_per_statement, value_rows,
};
use tokio::sync::oneshot;

const ITEMS: usize = 2_500;

/// Item 1 gets 100 more, then a new name and its quantity doubled; item 9,000 is
/// inserted named `name` (a `NULL` name is refused, after the other two ran).
fn three_statements(name: Option<&str>) -> Statements {
    let mut write = Statements::new();
    write
        .add(
            "UPDATE story_items SET qty = qty + $1 WHERE id = $2",
            vec![Param::from(100_i64), Param::from(1_i64)],
        )
        .add(
            "UPDATE story_items SET name = $1, qty = qty * $2 WHERE id = $3",
            vec![
                Param::from("renamed"),
                Param::from(2_i64),
                Param::from(1_i64),
            ],
        )
        .add(
            "INSERT INTO story_items (id, name, qty) VALUES ($1, $2, $3)",
            vec![
                Param::from(9_000_i64),
                Param::from(name),
                Param::from(1_i64),
            ],
        );
    write
}

async fn story(db: Db) {
    db.ping().await.unwrap();
    db.migrate(&[&MIGRATIONS]).await.unwrap();
    let sequence_ddl = match db.dialect() {
        Dialect::Postgres => "CREATE SEQUENCE story_seq",
        Dialect::Sqlite => "INSERT INTO sequences (name, value) VALUES ('story_seq', 0)",
    };
    for ddl in [
        "CREATE TABLE story_items (id BIGINT PRIMARY KEY, name TEXT NOT NULL, qty BIGINT NOT NULL)",
        sequence_ddl,
    ] {
        sqlx::query(ddl).execute(db.writer()).await.unwrap();
    }

    // Multi-row inserts, chunked so no statement carries too many parameters.
    let rows: Vec<(i64, String, i64)> = (0..ITEMS as i64)
        .map(|i| (i, format!("item-{i}"), i % 7))
        .collect();
    let mut tx = db.begin().await.unwrap();
    for chunk in rows.chunks(rows_per_statement(3)) {
        let sql = format!(
            "INSERT INTO story_items (id, name, qty) VALUES {}",
            value_rows(db.dialect(), chunk.len(), 3)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, name, qty) in chunk {
            query = query.bind(*id).bind(name.as_str()).bind(*qty);
        }
        query.execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    let (count, total): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(qty), 0) AS BIGINT) FROM story_items")
            .fetch_one(db.reader())
            .await
            .unwrap();
    assert_eq!(count, ITEMS as i64);
    assert_eq!(total, rows.iter().map(|(_, _, qty)| qty).sum::<i64>());

    // A duplicate key is told apart from other failures.
    let duplicate = sqlx::query("INSERT INTO story_items (id, name, qty) VALUES ($1, 'again', 0)")
        .bind(0_i64)
        .execute(db.writer())
        .await
        .unwrap_err();
    assert!(is_unique_violation(&duplicate), "{duplicate}");

    // IN lists, the empty one included (it matches nothing on both).
    for wanted in [vec![], vec![3_i64], vec![1, 10, 100, 5_000]] {
        let sql = format!(
            "SELECT id FROM story_items WHERE id IN ({}) ORDER BY id",
            parameter_list(1, wanted.len())
        );
        let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql));
        for id in &wanted {
            query = query.bind(*id);
        }
        let found = query.fetch_all(db.reader()).await.unwrap();
        let expected: Vec<i64> = wanted.iter().copied().filter(|id| *id < 2_500).collect();
        assert_eq!(found, expected);
    }

    // Statements sent together run in order, each numbering its parameters from $1.
    let mut tx = db.begin().await.unwrap();
    assert!(Statements::new().is_empty());
    let failed = three_statements(None).run(&mut tx).await.unwrap_err();
    assert!(
        failed.as_database_error().is_some(),
        "a NULL name is refused: {failed}"
    );
    tx.rollback().await.unwrap();
    let untouched: (String, i64) = sqlx::query_as("SELECT name, qty FROM story_items WHERE id = 1")
        .fetch_one(db.reader())
        .await
        .unwrap();
    assert_eq!(
        untouched,
        ("item-1".to_owned(), 1),
        "rolled back, none of them"
    );

    let mut tx = db.begin().await.unwrap();
    three_statements(Some("new")).run(&mut tx).await.unwrap();
    tx.commit().await.unwrap();
    let changed: (String, i64) = sqlx::query_as("SELECT name, qty FROM story_items WHERE id = 1")
        .fetch_one(db.reader())
        .await
        .unwrap();
    assert_eq!(changed, ("renamed".to_owned(), 202), "in the order added");

    // A sequence drawn by many tasks at once, inside their transactions, some of which
    // roll back: no committed value twice, and each task's committed values rising.
    let db = Arc::new(db);
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let db = db.clone();
            tokio::spawn(async move {
                let mut drawn = Vec::new();
                for draw in 0..40 {
                    db.prefetch_sequence("story_seq").await.unwrap();
                    let mut tx = db.begin().await.unwrap();
                    let value = db.next_in_sequence(&mut tx, "story_seq").await.unwrap();
                    if (task + draw) % 5 == 0 {
                        tx.rollback().await.unwrap();
                    } else {
                        tx.commit().await.unwrap();
                        drawn.push(value);
                    }
                }
                drawn
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for task in tasks {
        let drawn = task.await.unwrap();
        assert!(drawn.windows(2).all(|pair| pair[0] < pair[1]), "{drawn:?}");
        for value in drawn {
            assert!(seen.insert(value), "{value} drawn twice");
        }
    }
    assert_eq!(seen.len(), 8 * 32);
    // Drawing without a block in hand (SQLite's counter row) rises past every block.
    let mut tx = db.begin().await.unwrap();
    let mut last = seen.iter().copied().max().unwrap();
    for _ in 0..300 {
        let value = db.next_in_sequence(&mut tx, "story_seq").await.unwrap();
        assert!(value > last, "{value} after {last}");
        last = value;
    }
    tx.commit().await.unwrap();

    // Batch tasks: requests from many tasks, each answered once, all written once.
    let writer = db.clone();
    let queue = batches::start(
        "story",
        50,
        batches::lanes_for(&db),
        move |batch: Vec<(i64, oneshot::Sender<bool>)>| {
            let db = writer.clone();
            async move {
                let mut tx = db.begin().await.unwrap();
                let sql = format!(
                    "INSERT INTO story_items (id, name, qty) VALUES {}",
                    value_rows(db.dialect(), batch.len(), 3)
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (id, _) in &batch {
                    query = query.bind(*id).bind("batched").bind(1_i64);
                }
                query.execute(&mut *tx).await.unwrap();
                tx.commit().await.unwrap();
                for (_, done) in batch {
                    let _ = done.send(true);
                }
                Vec::new()
            }
        },
    );
    let senders: Vec<_> = (0..400_i64)
        .map(|i| {
            let queue = queue.clone();
            tokio::spawn(async move {
                batches::submit(&queue, "story", |done| (10_000 + i, done))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for sender in senders {
        assert!(sender.await.unwrap());
    }
    let batched: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM story_items WHERE name = 'batched'")
            .fetch_one(db.reader())
            .await
            .unwrap();
    assert_eq!(batched, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_backend() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/story.db", dir.path().display());
    let db = Db::connect(&url, &DatabaseSettings::default())
        .await
        .unwrap();
    story(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_backend() {
    let Some(admin) = matsuri_testkit::service_url("MATSURI_TEST_POSTGRES_URL") else {
        return;
    };
    let (url, dropped) = matsuri_testkit::scratch_database(&admin).await;
    let db = Db::connect(&url, &DatabaseSettings::default())
        .await
        .unwrap();
    story(db.clone()).await;
    db.close().await;
    drop(dropped);
}
