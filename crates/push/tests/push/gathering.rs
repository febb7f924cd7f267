//! Stored notifications: unread notices of one subject gather into one notification
//! that counts its actors and moves to the top; a read one is left alone; the list pages
//! newest first; reading marks a notification and everything older. Gathering holds
//! under a storm of concurrent notices.

use std::sync::Arc;

use matsuri_core::ids::UserId;
use matsuri_push::{NotificationKind, PushError};

use crate::backend_tests;
use crate::helpers::{Backend, TestPush, like, message};

async fn likes_of_one_post_gather_until_read(backend: Backend) {
    let env = TestPush::start(backend).await;
    let user = UserId::generate();
    for (i, actor) in ["Aiko", "Botan", "Chika"].iter().enumerate() {
        env.push
            .notify(&format!("like-{i}"), &[like(&user, "post-1", actor)])
            .await
            .unwrap();
    }
    // The same actor again counts once, and brings the latest text.
    let mut again = like(&user, "post-1", "Aiko");
    again.text = "Aiko liked your post again".into();
    env.push.notify("like-3", &[again]).await.unwrap();

    let page = env.push.notifications(&user, None, 20).await.unwrap();
    assert_eq!(page.unread_count, 1);
    assert_eq!(page.items.len(), 1);
    let gathered = &page.items[0];
    assert_eq!(gathered.kind, NotificationKind::PostLiked);
    assert_eq!(gathered.subject_id, "post-1");
    assert_eq!(gathered.actor_count, 3);
    let names: Vec<&str> = gathered.actors.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["Aiko", "Chika", "Botan"], "latest first");
    assert_eq!(gathered.text, "Aiko liked your post again");
    assert!(!gathered.read);
    assert_eq!(gathered.url.as_deref(), Some("/posts/post-1"));

    // Once read, the next like starts a new notification.
    env.push.mark_read(&user, None).await.unwrap();
    env.push
        .notify("like-4", &[like(&user, "post-1", "Daigo")])
        .await
        .unwrap();
    let page = env.push.notifications(&user, None, 20).await.unwrap();
    assert_eq!(page.unread_count, 1);
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[0].actor_count, 1);
    assert!(!page.items[0].read);
    assert_eq!(page.items[1].id, gathered.id);
    assert!(page.items[1].read);
    assert_eq!(page.items[1].actor_count, 3);
}

async fn the_list_pages_newest_first_and_a_gathered_one_moves_up(backend: Backend) {
    let env = TestPush::start(backend).await;
    let (user, other) = (UserId::generate(), UserId::generate());
    for chat in 0..5 {
        env.push
            .notify(
                &format!("m{chat}"),
                &[message(&user, &format!("chat-{chat}"), "Eri", "hello")],
            )
            .await
            .unwrap();
    }
    env.push
        .notify("other", &[message(&other, "chat-0", "Eri", "hello")])
        .await
        .unwrap();
    // chat-1 hears again: it moves to the top.
    env.push
        .notify("m5", &[message(&user, "chat-1", "Fumi", "again")])
        .await
        .unwrap();
    let first = env.push.notifications(&user, None, 2).await.unwrap();
    let subjects = |page: &matsuri_push::NotificationPage| -> Vec<String> {
        page.items.iter().map(|n| n.subject_id.clone()).collect()
    };
    assert_eq!(subjects(&first), ["chat-1", "chat-4"]);
    assert_eq!(first.unread_count, 5);
    let second = env
        .push
        .notifications(&user, first.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(subjects(&second), ["chat-3", "chat-2"]);
    let third = env
        .push
        .notifications(&user, second.next_cursor.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(subjects(&third), ["chat-0"]);
    assert_eq!(third.next_cursor, None);
    // A cursor that is no position of the list ends it.
    let beyond = env
        .push
        .notifications(&user, Some("nonsense"), 2)
        .await
        .unwrap();
    assert!(beyond.items.is_empty() && beyond.next_cursor.is_none());

    // Reading up to chat-3 marks it and the older ones, not the newer.
    let unread = env
        .push
        .mark_read(&user, Some(&second.items[0].id))
        .await
        .unwrap();
    assert_eq!(unread.unread_count, 2);
    let page = env.push.notifications(&user, None, 20).await.unwrap();
    let read: Vec<bool> = page.items.iter().map(|n| n.read).collect();
    assert_eq!(read, [false, false, true, true, true]);

    // Someone else's notification, or none at all, is not found.
    let theirs = env.push.notifications(&other, None, 20).await.unwrap();
    assert!(matches!(
        env.push.mark_read(&user, Some(&theirs.items[0].id)).await,
        Err(PushError::NotificationNotFound)
    ));
    assert!(matches!(
        env.push.mark_read(&user, Some("no-such-id")).await,
        Err(PushError::NotificationNotFound)
    ));
    assert_eq!(env.push.unread_count(&other).await.unwrap(), 1);
    assert_eq!(
        env.push.mark_read(&user, None).await.unwrap().unread_count,
        0
    );
}

async fn a_storm_of_likes_gathers_into_one_notification(backend: Backend) {
    let env = Arc::new(TestPush::start(backend).await);
    let user = UserId::generate();
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let env = env.clone();
            let user = user.clone();
            tokio::spawn(async move {
                let notice = like(&user, "post-1", &format!("fan-{i}"));
                env.push
                    .notify(&format!("like-{i}"), std::slice::from_ref(&notice))
                    .await
                    .unwrap();
                // At least once: the same event may come twice.
                if i % 5 == 0 {
                    env.push
                        .notify(&format!("like-{i}"), &[notice])
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let page = env.push.notifications(&user, None, 20).await.unwrap();
    assert_eq!(page.unread_count, 1);
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].actor_count, 50);
    assert_eq!(page.items[0].actors.len(), 3);
    // The count is the actors recorded, each once.
    assert_eq!(
        env.count("SELECT COUNT(*) FROM notification_actors").await,
        50
    );
    assert_eq!(
        env.count("SELECT COUNT(*) FROM notifications WHERE read_at IS NULL")
            .await,
        1
    );
}

backend_tests!(
    likes_of_one_post_gather_until_read,
    the_list_pages_newest_first_and_a_gathered_one_moves_up,
    a_storm_of_likes_gathers_into_one_notification,
);
