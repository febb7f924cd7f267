//! One story, run against every backend of the `coord` port: memory always, Redis when
//! `MATSURI_TEST_REDIS_URL` is set (in CI it must be).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use matsuri_coord::{Allocation, Coord, MemoryCoord, RedisCoord, Taken, Window};
use matsuri_core::ManualClock;

/// The story; `expire` makes `ttl` pass (moving a manual clock, or deleting the keys
/// for Redis, whose clock is its own).
async fn story(coord: &dyn Coord, expire: impl AsyncFn(&[&str])) {
    coord.ping().await.unwrap();

    // A waiting queue: first come, first served; joining twice keeps the first place.
    assert!(coord.zadd_nx("queue", "ann", 100).await.unwrap());
    assert!(coord.zadd_nx("queue", "bob", 200).await.unwrap());
    assert!(coord.zadd_nx("queue", "cy", 150).await.unwrap());
    assert!(!coord.zadd_nx("queue", "ann", 999).await.unwrap());
    assert_eq!(coord.zcard("queue").await.unwrap(), 3);
    assert_eq!(coord.zrank("queue", "ann").await.unwrap(), Some(0));
    assert_eq!(coord.zrank("queue", "bob").await.unwrap(), Some(2));
    assert_eq!(coord.zrank("queue", "nobody").await.unwrap(), None);
    let admitted = coord.zpopmin("queue", 2).await.unwrap();
    assert_eq!(
        admitted,
        vec![("ann".to_owned(), 100), ("cy".to_owned(), 150)]
    );
    assert_eq!(coord.zrank("queue", "bob").await.unwrap(), Some(0));
    assert!(coord.zrem("queue", "bob").await.unwrap());
    assert!(!coord.zrem("queue", "bob").await.unwrap());
    assert!(coord.zpopmin("queue", 5).await.unwrap().is_empty());

    // Tokens with a time to live, set-if-absent, and many set in one round trip.
    assert!(
        coord
            .set_nx("hold:seat-1", "alice", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(
        !coord
            .set_nx("hold:seat-1", "bob", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert_eq!(
        coord.get("hold:seat-1").await.unwrap().as_deref(),
        Some("alice")
    );
    let ttl = coord.ttl("hold:seat-1").await.unwrap().unwrap();
    assert!(
        ttl <= Duration::from_secs(60) && ttl > Duration::from_secs(50),
        "{ttl:?}"
    );
    let tokens: Vec<(String, String)> = (0..50)
        .map(|i| (format!("token:{i}"), format!("user-{i}")))
        .collect();
    coord
        .set_many(&tokens, Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(
        coord.get("token:49").await.unwrap().as_deref(),
        Some("user-49")
    );
    expire(&["hold:seat-1", "token:49"]).await;
    assert_eq!(coord.get("hold:seat-1").await.unwrap(), None);
    assert_eq!(coord.get("token:49").await.unwrap(), None);
    assert_eq!(coord.ttl("hold:seat-1").await.unwrap(), None);
    assert!(
        coord
            .set_nx("hold:seat-1", "bob", Duration::from_secs(60))
            .await
            .unwrap()
    );
    assert!(coord.del("hold:seat-1").await.unwrap());
    assert!(!coord.del("hold:seat-1").await.unwrap());

    // Admission in batches: peek at the head, add many in one go, remove many, and drop
    // everything scored at or below a bound (expired access slots).
    coord
        .zadd_many(
            "admit",
            &[
                ("d".into(), 40),
                ("a".into(), 10),
                ("c".into(), 30),
                ("b".into(), 20),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        coord.zrange_head("admit", 3).await.unwrap(),
        ["a", "b", "c"]
    );
    assert!(coord.zrange_head("admit", 0).await.unwrap().is_empty());
    coord.zadd_many("admit", &[("a".into(), 50)]).await.unwrap();
    assert_eq!(coord.zrange_head("admit", 1).await.unwrap(), ["b"]);
    let gone = ["b".to_owned(), "c".to_owned(), "nobody".to_owned()];
    assert_eq!(coord.zrem_many("admit", &gone).await.unwrap(), 2);
    assert_eq!(coord.zrem_many("admit", &[]).await.unwrap(), 0);
    assert_eq!(coord.zrem_up_to("admit", 40).await.unwrap(), 1);
    assert_eq!(coord.zrange_head("admit", 10).await.unwrap(), ["a"]);
    assert_eq!(coord.zrem_up_to("admit", 50).await.unwrap(), 1);
    assert_eq!(coord.zcard("admit").await.unwrap(), 0);

    // A connection registry: each node stamps its users' keys with an expiry score; the
    // highest score says until when a user is connected anywhere; the keys themselves
    // expire once no node stamps them.
    let users = ["on:ann".to_owned(), "on:bob".to_owned()];
    coord
        .zadd_each(&users, "node-1", 5_000, Duration::from_secs(90))
        .await
        .unwrap();
    coord
        .zadd_each(&users[..1], "node-2", 9_000, Duration::from_secs(90))
        .await
        .unwrap();
    let probe = [users[0].clone(), users[1].clone(), "on:cy".to_owned()];
    assert_eq!(
        coord.zmax_each(&probe).await.unwrap(),
        [Some(9_000), Some(5_000), None]
    );
    assert!(coord.zrem("on:ann", "node-2").await.unwrap());
    assert_eq!(
        coord.zmax_each(&users).await.unwrap(),
        [Some(5_000), Some(5_000)]
    );
    assert!(coord.zmax_each(&[]).await.unwrap().is_empty());
    expire(&["on:ann", "on:bob"]).await;
    assert_eq!(coord.zmax_each(&users).await.unwrap(), [None, None]);

    // A ranking: scores move by increments, concurrent ones all count.
    assert_eq!(coord.zincr("top", "c1", 1).await.unwrap(), 1);
    let bumps = futures::future::join_all((0..100).map(|_| coord.zincr("top", "c2", -1))).await;
    assert!(bumps.iter().all(Result::is_ok));
    assert_eq!(coord.zincr("top", "c1", -3).await.unwrap(), -2);
    assert_eq!(coord.zrange_head("top", 2).await.unwrap(), ["c2", "c1"]);
    assert_eq!(coord.zincr("top", "c2", 0).await.unwrap(), -100);

    // Sliding windows: 3 a minute and 1 every 10 s, taken together or not at all.
    let windows = [
        Window {
            key: "rate:minute".into(),
            limit: 3,
            length: Duration::from_secs(60),
        },
        Window {
            key: "rate:slow".into(),
            limit: 1,
            length: Duration::from_secs(10),
        },
    ];
    let t0 = 1_000_000;
    assert_eq!(coord.take_slots(&windows, "m1", t0).await.unwrap(), Ok(()));
    assert_eq!(
        coord.take_slots(&windows, "m2", t0 + 4_000).await.unwrap(),
        Err(Duration::from_secs(6)),
        "the slow window is full for 6 more seconds"
    );
    assert_eq!(
        coord.take_slots(&windows, "m2", t0 + 10_000).await.unwrap(),
        Ok(())
    );
    assert_eq!(
        coord.take_slots(&windows, "m3", t0 + 20_000).await.unwrap(),
        Ok(())
    );
    assert_eq!(
        coord.take_slots(&windows, "m4", t0 + 45_000).await.unwrap(),
        Err(Duration::from_secs(15)),
        "the minute is full until the first slot is a minute old"
    );
    assert_eq!(
        coord.zcard("rate:minute").await.unwrap(),
        3,
        "a refusal takes nothing"
    );
    assert_eq!(
        coord.take_slots(&windows, "m4", t0 + 60_000).await.unwrap(),
        Ok(())
    );
    let closed = [Window {
        key: "rate:closed".into(),
        limit: 0,
        length: Duration::from_secs(5),
    }];
    assert_eq!(
        coord.take_slots(&closed, "m", t0).await.unwrap(),
        Err(Duration::from_secs(5))
    );
    assert_eq!(coord.take_slots(&[], "m", t0).await.unwrap(), Ok(()));
    // Many tasks at once at the boundary: exactly the limit gets through.
    let burst = [Window {
        key: "rate:burst".into(),
        limit: 10,
        length: Duration::from_secs(60),
    }];
    let members: Vec<String> = (0..50).map(|i| format!("b{i}")).collect();
    let taken = futures::future::join_all(
        members
            .iter()
            .zip(0..)
            .map(|(member, i)| coord.take_slots(&burst, member, t0 + i)),
    )
    .await;
    assert_eq!(taken.iter().filter(|t| matches!(t, Ok(Ok(())))).count(), 10);

    // Counters, hammered from many tasks: no update is lost.
    assert_eq!(coord.incr_by("active", 5).await.unwrap(), 5);
    assert_eq!(coord.incr_by("active", -2).await.unwrap(), 3);
    let bumps = futures::future::join_all((0..200).map(|_| coord.incr_by("active", 1))).await;
    assert!(bumps.iter().all(Result::is_ok));
    assert_eq!(coord.incr_by("active", 0).await.unwrap(), 203);
}

fn lines(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|(i, q)| ((*i).to_owned(), *q)).collect()
}

/// The allocation store: all lines or none, never below zero, each give-back once, and a
/// sync that counts only the deltas the ledger does not know. Items and orders carry
/// `run` so Redis runs never meet.
async fn allocation_story(coord: &dyn Coord, run: &str) {
    let (a, b) = (format!("a-{run}"), format!("b-{run}"));
    let order = |n: u32| format!("order-{run}-{n}");
    let hour = Duration::from_secs(3600);
    assert_eq!(
        coord
            .alloc_take(&order(1), &lines(&[(&a, 1)]), hour)
            .await
            .unwrap(),
        Taken::Unknown(a.clone())
    );
    assert_eq!(
        coord.alloc_sync(&a, 5, &[], false).await.unwrap(),
        Some(Allocation {
            allocatable: 5,
            reserved: 0
        })
    );
    assert_eq!(
        coord.alloc_sync(&a, 9, &[], true).await.unwrap(),
        None,
        "a count exists"
    );
    coord.alloc_sync(&b, 2, &[], true).await.unwrap();
    // Both lines or neither.
    assert_eq!(
        coord
            .alloc_take(&order(1), &lines(&[(&a, 2), (&b, 3)]), hour)
            .await
            .unwrap(),
        Taken::Short {
            item: b.clone(),
            left: 2
        }
    );
    assert_eq!(
        coord
            .alloc_counts(&[a.clone(), b.clone(), format!("c-{run}")])
            .await
            .unwrap(),
        vec![Some(5), Some(2), None]
    );
    assert_eq!(
        coord
            .alloc_take(&order(1), &lines(&[(&a, 2), (&b, 1)]), hour)
            .await
            .unwrap(),
        Taken::Taken
    );
    assert_eq!(
        coord
            .alloc_take(&order(1), &lines(&[(&a, 2), (&b, 1)]), hour)
            .await
            .unwrap(),
        Taken::Already
    );
    assert_eq!(
        coord
            .alloc_take(&order(2), &lines(&[(&a, 1)]), hour)
            .await
            .unwrap(),
        Taken::Taken
    );
    assert_eq!(
        coord.alloc_state(&a).await.unwrap(),
        Some(Allocation {
            allocatable: 2,
            reserved: 3
        })
    );
    let mut open = coord.alloc_open(&a).await.unwrap();
    open.sort();
    assert_eq!(open, vec![order(1), order(2)]);
    // Given back once, exactly its units.
    let mut back = coord.alloc_give_back(&order(1)).await.unwrap();
    back.sort();
    assert_eq!(back, lines(&[(&a, 2), (&b, 1)]));
    assert!(coord.alloc_give_back(&order(1)).await.unwrap().is_empty());
    assert_eq!(
        coord.alloc_counts(&[a.clone(), b.clone()]).await.unwrap(),
        vec![Some(4), Some(2)]
    );
    // The ledger now counts order 2's sale in a net of 4: its delta leaves, and a later
    // order the ledger does not know yet still counts against the net.
    assert_eq!(
        coord
            .alloc_take(&order(3), &lines(&[(&a, 1)]), hour)
            .await
            .unwrap(),
        Taken::Taken
    );
    assert_eq!(
        coord.alloc_sync(&a, 4, &[order(2)], false).await.unwrap(),
        Some(Allocation {
            allocatable: 3,
            reserved: 1
        })
    );
    assert_eq!(coord.alloc_open(&a).await.unwrap(), vec![order(3)]);
    assert!(
        coord.alloc_give_back(&order(2)).await.unwrap().is_empty(),
        "a sold line is not given back"
    );
    // A delta that lapses holds nothing; the next sync hands its units out again.
    assert_eq!(
        coord
            .alloc_take(&order(4), &lines(&[(&b, 2)]), Duration::from_millis(30))
            .await
            .unwrap(),
        Taken::Taken
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(
        coord.alloc_sync(&b, 2, &[], false).await.unwrap(),
        Some(Allocation {
            allocatable: 2,
            reserved: 0
        })
    );
    assert!(coord.alloc_give_back(&order(4)).await.unwrap().is_empty());
}

/// Many buyers at once on few units: exactly the units are handed out, each give-back
/// counts once however often it runs, and the count ends where it began.
async fn allocation_storm(coord: Arc<dyn Coord>, run: &str) {
    let item = format!("storm-{run}");
    coord.alloc_sync(&item, 30, &[], false).await.unwrap();
    let takes = (0..200).map(|n| {
        let (coord, item) = (coord.clone(), item.clone());
        let order = format!("storm-{run}-{n}");
        tokio::spawn(async move {
            let taken = coord
                .alloc_take(&order, &[(item, 1)], Duration::from_secs(60))
                .await
                .unwrap();
            (order, taken)
        })
    });
    let mut won = Vec::new();
    for handle in takes {
        let (order, taken) = handle.await.unwrap();
        match taken {
            Taken::Taken => won.push(order),
            Taken::Short { left, .. } => assert_eq!(left, 0),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won.len(), 30);
    let backs = won
        .iter()
        .flat_map(|order| [order.clone(), order.clone()])
        .map(|order| {
            let coord = coord.clone();
            tokio::spawn(async move { coord.alloc_give_back(&order).await.unwrap().len() })
        });
    let mut given = 0;
    for handle in backs {
        given += handle.await.unwrap();
    }
    assert_eq!(given, 30, "each order given back once");
    assert_eq!(coord.alloc_counts(&[item]).await.unwrap(), vec![Some(30)]);
}

#[tokio::test]
async fn memory_backend() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let coord = MemoryCoord::new(clock.clone());
    story(&coord, async |_keys: &[&str]| {
        clock.advance(Duration::from_secs(601))
    })
    .await;
}

#[tokio::test]
async fn memory_allocations() {
    let coord = MemoryCoord::new(Arc::new(matsuri_core::clock::SystemClock));
    allocation_story(&coord, "m").await;
    allocation_storm(Arc::new(coord), "m").await;
}

#[tokio::test]
async fn memory_counters_under_concurrency() {
    let coord = Arc::new(MemoryCoord::new(Arc::new(ManualClock::new(0))));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let coord = coord.clone();
            tokio::spawn(async move {
                for _ in 0..500 {
                    coord.incr_by("n", 1).await.unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(coord.incr_by("n", 0).await.unwrap(), 8_000);
}

#[tokio::test]
async fn redis_backend() {
    let Some(url) = matsuri_testkit::service_url("MATSURI_TEST_REDIS_URL") else {
        return;
    };
    let prefix = matsuri_testkit::unique_name();
    let coord = RedisCoord::connect(&url, &prefix).await.unwrap();
    allocation_story(&coord, "r").await;
    let coord = Arc::new(coord);
    allocation_storm(coord.clone(), "r").await;
    // Redis keeps its own time: expiring means the keys are gone, as TTL would make them.
    story(coord.as_ref(), async |keys: &[&str]| {
        for key in keys {
            coord.del(key).await.unwrap();
        }
    })
    .await;
    for key in [
        "queue",
        "active",
        "top",
        "rate:minute",
        "rate:slow",
        "rate:burst",
    ] {
        coord.del(key).await.unwrap();
    }
    let tokens: Vec<String> = (0..50).map(|i| format!("token:{i}")).collect();
    for key in tokens {
        coord.del(&key).await.unwrap();
    }
}
