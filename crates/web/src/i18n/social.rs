//! The texts of the posts pages (the feed, a post and who liked it) and of the
//! notifications (the header's bell and its page), beside the main table; looked up with
//! it as one. English counts have a form for one and one for more.

/// (key, Japanese, English).
pub(super) const TEXTS: &[(&str, &str, &str)] = &[
    ("nav.posts", "投稿", "Posts"),
    ("nav.notifications", "お知らせ", "Notifications"),
    ("posts.title", "みんなの投稿", "Posts"),
    (
        "posts.compose_label",
        "いまどうしてる？",
        "What's happening?",
    ),
    (
        "posts.compose_hint",
        "2,000文字まで",
        "Up to 2,000 characters",
    ),
    ("posts.submit", "投稿する", "Post"),
    (
        "posts.sign_in",
        "ログインすると投稿やいいねができます",
        "Sign in to post and like",
    ),
    ("posts.more", "さらに読み込む", "Load more"),
    ("posts.back", "投稿一覧へ戻る", "Back to the posts"),
    ("post.title", "投稿", "Post"),
    ("post.likers", "いいねした人", "Liked by"),
    ("notes.title", "お知らせ", "Notifications"),
    ("notes.read_all", "すべて既読にする", "Mark all as read"),
    (
        "notes.hint",
        "未読のお知らせは「すべて既読にする」を押すまで未読のままです。",
        "Unread notifications stay unread until you mark them all as read.",
    ),
    ("js.post.like", "いいね", "Like"),
    ("js.post.likes_one", "いいね {n}件", "{n} like"),
    ("js.post.likes_many", "いいね {n}件", "{n} likes"),
    ("js.post.delete", "削除", "Delete"),
    ("js.post.none", "まだ投稿はありません。", "No posts yet."),
    (
        "js.post.no_likers",
        "まだだれもいいねしていません。",
        "No one has liked this yet.",
    ),
    (
        "js.post.empty",
        "投稿する内容を入力してください。",
        "Write something to post.",
    ),
    (
        "js.post.too_long",
        "投稿は2,000文字までです。",
        "A post has at most 2,000 characters.",
    ),
    (
        "js.post.like_failed",
        "いいねを反映できませんでした: {why}",
        "The like did not go through: {why}",
    ),
    (
        "js.bell.unread_one",
        "未読のお知らせ {n}件",
        "{n} unread notification",
    ),
    (
        "js.bell.unread_many",
        "未読のお知らせ {n}件",
        "{n} unread notifications",
    ),
    ("js.note.unread", "未読", "Unread"),
    (
        "js.note.liked",
        "{name}さんがあなたの投稿にいいねしました",
        "{name} liked your post",
    ),
    (
        "js.note.liked_and_one",
        "{name}さんほか1人があなたの投稿にいいねしました",
        "{name} and 1 other liked your post",
    ),
    (
        "js.note.liked_and_many",
        "{name}さんほか{n}人があなたの投稿にいいねしました",
        "{name} and {n} others liked your post",
    ),
    ("js.note.message", "{name}: {text}", "{name}: {text}"),
    (
        "js.note.none",
        "お知らせはまだありません。",
        "No notifications yet.",
    ),
    (
        "js.note.all_read",
        "すべて既読にしました。",
        "All marked as read.",
    ),
];
