//! Likes whose batch cannot commit: the like that breaks its transaction is refused
//! alone, nobody is told of a like that did not commit, and the rest of its batch goes
//! through; a post deleted in the middle of a storm of likes keeps none of them.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::chat::support::person;
use crate::helpers::{Backend, TestApp, spawn_app};

crate::backend_tests!(
    a_like_that_cannot_commit_is_refused_alone,
    a_post_deleted_in_a_storm_keeps_none_of_its_likes
);

async fn post(app: &TestApp, token: &str, text: &str) -> String {
    let res = app.post("/posts", Some(token), json!({"text": text})).await;
    assert_eq!(res.status, 201, "{}", res.text);
    res.body["id"].as_str().unwrap().to_owned()
}

fn user_id(app: &TestApp, token: &str) -> String {
    let who = app.components.keys.verify(token).unwrap();
    who.user_id.as_str().to_owned()
}

/// Who liked `post`, as the database has it, sorted.
async fn likers_of(app: &TestApp, post: &str) -> Vec<String> {
    let mut ids: Vec<String> =
        sqlx::query_scalar("SELECT user_id FROM post_likes WHERE post_id = $1")
            .bind(post)
            .fetch_all(app.components.db.reader())
            .await
            .unwrap();
    ids.sort_unstable();
    ids
}

async fn like_count(app: &TestApp, post: &str) -> i64 {
    sqlx::query_scalar("SELECT like_count FROM posts WHERE id = $1")
        .bind(post)
        .fetch_one(app.components.db.reader())
        .await
        .unwrap()
}

/// Makes the database refuse the notice row of `user`'s like: the like row is inserted
/// first in the same transaction, so the refusal must take it back with it.
async fn refuse_notices_of(app: &TestApp, user: &str) {
    let sql = match app.components.db.dialect() {
        matsuri_db::Dialect::Sqlite => format!(
            "CREATE TRIGGER refuse_notice BEFORE INSERT ON post_like_notices \
             WHEN NEW.user_id = '{user}' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ),
        matsuri_db::Dialect::Postgres => format!(
            "CREATE FUNCTION refuse_notice() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.user_id = '{user}' THEN RAISE EXCEPTION 'refused by the test'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER refuse_notice BEFORE INSERT ON post_like_notices \
             FOR EACH ROW EXECUTE FUNCTION refuse_notice()"
        ),
    };
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(app.components.db.writer())
        .await
        .unwrap();
}

async fn a_like_that_cannot_commit_is_refused_alone(backend: Backend) {
    let app = spawn_app(backend).await;
    let author = person(&app, "author@refused.test").await;
    let id = post(&app, &author.token, "a storm with one bad like").await;
    let fans = app.register_crowd("refused", 300).await;
    let spoiler = user_id(&app, &fans[137]);
    refuse_notices_of(&app, &spoiler).await;

    // Everyone at once, so the spoiler's like shares its batch with others.
    let path = format!("/posts/{id}/like");
    let answers = futures::future::join_all(
        fans.iter()
            .map(|token| app.request(Method::PUT, &path, Some(token), None)),
    )
    .await;
    let mut told: Vec<String> = Vec::new();
    for (token, answer) in fans.iter().zip(&answers) {
        if user_id(&app, token) == spoiler {
            assert_eq!(
                answer.status,
                StatusCode::INTERNAL_SERVER_ERROR,
                "{}",
                answer.text
            );
            continue;
        }
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.body["liked"], true);
        told.push(user_id(&app, token));
    }
    told.sort_unstable();
    assert_eq!(told.len(), 299);
    assert_eq!(
        likers_of(&app, &id).await,
        told,
        "every like answered is there, and only those"
    );
    assert_eq!(like_count(&app, &id).await, 299);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM post_like_notices").await,
        299
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox WHERE topic = 'post.liked'")
            .await,
        299
    );

    // Nothing of the refused like stayed behind: once the database takes it, it is a
    // first like that counts and notifies like any other.
    let drop = match app.components.db.dialect() {
        matsuri_db::Dialect::Sqlite => "DROP TRIGGER refuse_notice",
        matsuri_db::Dialect::Postgres => "DROP TRIGGER refuse_notice ON post_like_notices",
    };
    sqlx::raw_sql(drop)
        .execute(app.components.db.writer())
        .await
        .unwrap();
    let spoiler_token = fans.iter().find(|t| user_id(&app, t) == spoiler).unwrap();
    let again = app
        .request(
            Method::PUT,
            &format!("/posts/{id}/like"),
            Some(spoiler_token),
            None,
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(
        again.body,
        json!({"post_id": id, "liked": true, "like_count": 300})
    );
    assert_eq!(likers_of(&app, &id).await.len(), 300);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM post_like_notices").await,
        300
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM outbox WHERE topic = 'post.liked'")
            .await,
        300
    );
}

async fn a_post_deleted_in_a_storm_keeps_none_of_its_likes(backend: Backend) {
    let app = spawn_app(backend).await;
    let author = person(&app, "author@doomed.test").await;
    let doomed = post(&app, &author.token, "about to go").await;
    let kept = post(&app, &author.token, "staying").await;
    let fans = app.register_crowd("doomed", 400).await;

    // Every fan likes both posts at once; the author deletes one once a hundred of the
    // likes are answered.
    let answered = tokio::sync::watch::Sender::new(0_usize);
    let like = |token: &String, id: &String| {
        let (app, answered) = (&app, &answered);
        let path = format!("/posts/{id}/like");
        let token = token.clone();
        async move {
            let answer = app.request(Method::PUT, &path, Some(&token), None).await;
            answered.send_modify(|n| *n += 1);
            answer
        }
    };
    let storm = futures::future::join_all(
        fans.iter()
            .flat_map(|token| [like(token, &doomed), like(token, &kept)]),
    );
    let delete = async {
        let mut count = answered.subscribe();
        count.wait_for(|n| *n >= 100).await.unwrap();
        app.request(
            Method::DELETE,
            &format!("/posts/{doomed}"),
            Some(&author.token),
            None,
        )
        .await
    };
    let (answers, deleted) = tokio::join!(storm, delete);
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    for pair in answers.chunks(2) {
        let [on_doomed, on_kept] = pair else {
            panic!("two answers a fan")
        };
        assert!(
            on_doomed.status == 200 || on_doomed.status == 404,
            "{} {}",
            on_doomed.status,
            on_doomed.text
        );
        assert_eq!(on_kept.status, 200, "{}", on_kept.text);
        assert_eq!(on_kept.body["liked"], true);
    }

    // After the deletion a like of the post finds nothing, and writes nothing.
    let late = app
        .request(
            Method::PUT,
            &format!("/posts/{doomed}/like"),
            Some(&fans[0]),
            None,
        )
        .await;
    assert_eq!(late.status, 404, "{}", late.text);
    assert!(
        likers_of(&app, &doomed).await.is_empty(),
        "a deleted post keeps no likes"
    );
    let notices: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM post_like_notices WHERE post_id = $1")
            .bind(&doomed)
            .fetch_one(app.components.db.reader())
            .await
            .unwrap();
    assert_eq!(notices, 0);
    assert_eq!(likers_of(&app, &kept).await.len(), 400);
    assert_eq!(like_count(&app, &kept).await, 400);
    assert_eq!(app.count("SELECT COUNT(*) FROM post_likes").await, 400);
    let shown: Value = app.get(&format!("/posts/{kept}"), None).await.body;
    assert_eq!(shown["like_count"], 400);
}
