//! The texts of the chat pages and their notifications switch, kept beside the main
//! table so neither grows past a readable size; looked up with it as one.

/// (key, Japanese, English).
pub(super) const TEXTS: &[(&str, &str, &str)] = &[
    ("nav.chat", "チャット", "Chat"),
    ("chat.title", "チャット", "Chats"),
    ("chat.your_id", "あなたのID", "Your id"),
    (
        "chat.your_id_hint",
        "このIDを相手に伝えると、あなたとのチャットを始めてもらえます。",
        "Give this id to someone so they can start a chat with you.",
    ),
    ("chat.copy", "IDをコピー", "Copy the id"),
    ("chat.list", "会話", "Conversations"),
    ("chat.start_title", "チャットを始める", "Start a chat"),
    ("chat.member_ids", "相手のID", "Their ids"),
    (
        "chat.member_ids_hint",
        "1人ならそのIDを、グループなら全員のIDをカンマか改行で区切って入力します。",
        "One id for a chat with one person; for a group, everyone's ids, separated by commas or new lines.",
    ),
    (
        "chat.title_label",
        "グループ名（任意）",
        "Group name (optional)",
    ),
    ("chat.start", "始める", "Start"),
    ("chat.notify_title", "通知", "Notifications"),
    (
        "chat.notify",
        "離れているときに通知する",
        "Notify me when I'm away",
    ),
    ("chat.back", "チャット一覧へ", "All chats"),
    ("chat.messages", "メッセージ", "Messages"),
    (
        "chat.older",
        "以前のメッセージを読み込む",
        "Load older messages",
    ),
    ("chat.message_label", "メッセージを入力", "Write a message"),
    ("chat.send", "送信", "Send"),
    (
        "chat.compose_hint",
        "Enterで送信、Shift+Enterで改行します。",
        "Enter sends; Shift+Enter starts a new line.",
    ),
    ("js.chat.copied", "コピーしました", "Copied"),
    (
        "js.chat.selected",
        "IDを選択しました。コピーしてください。",
        "The id is selected: copy it.",
    ),
    (
        "js.chat.none",
        "まだチャットはありません。",
        "No chats yet.",
    ),
    ("js.chat.unread", "未読 {n} 件", "{n} unread"),
    (
        "js.chat.no_messages",
        "まだメッセージはありません。",
        "No messages yet.",
    ),
    ("js.chat.only_you", "あなただけ", "Only you"),
    ("js.chat.you", "あなた", "You"),
    ("js.chat.members", "メンバー: {names}", "Members: {names}"),
    (
        "js.chat.members_invalid",
        "IDを確かめてください。ほかの人のIDを1つ以上入力します（あなたのIDは不要です）。",
        "Check the ids: give one or more ids of other people (not your own).",
    ),
    (
        "js.chat.beginning",
        "ここが会話のはじまりです。",
        "This is the start of the conversation.",
    ),
    ("js.chat.news", "{name}: {text}", "{name}: {text}"),
    ("js.chat.sending", "送信中", "Sending"),
    ("js.chat.sent", "送信済み", "Sent"),
    ("js.chat.delivered", "配信済み", "Delivered"),
    ("js.chat.read", "既読", "Read"),
    ("js.chat.failed", "送信できませんでした", "Not sent"),
    ("js.chat.retry", "もう一度送る", "Send again"),
    (
        "js.chat.too_long",
        "メッセージは4,000文字までです。",
        "A message has at most 4,000 characters.",
    ),
    (
        "js.chat.notify_on",
        "オン: 離れているあいだのメッセージをこのブラウザに通知します。",
        "On: this browser tells you of messages while you are away.",
    ),
    (
        "js.chat.notify_off",
        "オフ: 通知は届きません。",
        "Off: no notifications.",
    ),
    ("js.chat.notify_working", "設定しています…", "Setting up…"),
    (
        "js.chat.notify_failed",
        "通知をオンにできませんでした。もう一度お試しください。",
        "Notifications could not be turned on. Please try again.",
    ),
    (
        "js.chat.notify_blocked",
        "このサイトの通知はブラウザの設定でブロックされています。",
        "Notifications from this site are blocked in your browser's settings.",
    ),
    (
        "js.chat.notify_unsupported",
        "このブラウザは通知を受け取れないため、この設定は使えません。",
        "This browser cannot receive notifications, so this setting is not available.",
    ),
];
