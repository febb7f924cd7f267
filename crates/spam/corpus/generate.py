#!/usr/bin/env python3
"""Writes live-comments.tsv: the labelled live-comment corpus of matsuri's default spam model.

Every line is composed here from phrases written for this project (no dataset is copied):
what viewers of a concert or a stream write (cheers, reactions, questions, song requests,
timestamps, greetings, applause, laughs), and what spammers write (prize and crypto scams,
phishing, advertising, floods, abuse). The phrases are combined with random fillers,
endings, spellings (full-width, half-width, spaced-out letters) and links, so that the model
learns what spam is made of rather than a handful of templates.

Deterministic: the same script writes the same file. Run it from anywhere:

    python3 crates/spam/corpus/generate.py
"""

import os
import random

SEED = 21
HAM_LINES = 2400
SPAM_LINES = 1300
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "live-comments.tsv")

rng = random.Random(SEED)


def pick(options):
    return rng.choice(options)


def maybe(text, chance=0.5):
    return text if rng.random() < chance else ""


# --- shared fillers -------------------------------------------------------------------------

SONGS = ["夜明けのメロディ", "星空ドライブ", "サクラ色の約束", "青いベンチ", "ハナビ", "月光ダンス",
         "はじまりの歌", "ミッドナイト・パレード", "Summer Rain", "Neon Lights", "Blue Horizon",
         "Starlight", "Paper Planes", "Golden Hour", "Run Away", "First Snow", "Echoes",
         "君とワルツ", "ひまわり通り", "アイスクリーム", "ラストダンス", "Orbit", "Afterglow"]
MEMBERS = ["ユイ", "ミサキ", "レン", "ハルト", "そら", "あかり", "リク", "Mika", "Ren", "Yui",
           "ケンタ", "さくら", "ひなた", "Kai", "Nana", "ドラムの人", "ギターさん", "ベースの人"]
PLACES_JA = ["北海道", "沖縄", "大阪", "福岡", "名古屋", "仙台", "広島", "東京", "京都", "札幌",
             "神戸", "新潟", "熊本", "静岡", "金沢", "台湾", "韓国", "アメリカ", "ドイツ", "ブラジル"]
PLACES_EN = ["Brazil", "London", "Manila", "Texas", "Germany", "Paris", "Jakarta", "Mexico",
             "Toronto", "Sydney", "Seoul", "Taipei", "Chile", "Poland", "Ohio", "Osaka", "Italy",
             "the Philippines", "Vietnam", "Argentina", "Canada", "Spain"]
EMOJI_HAM = ["🔥", "😭", "💕", "👏", "✨", "🎉", "😂", "🥰", "💖", "🙌", "😍", "🎶", "❤️", "🥺", "😆"]
EMOJI_SPAM = ["💰", "🎁", "🔥", "💸", "👉", "✅", "🚀", "💎", "📈", "⚡", "🤑", "❗"]


def timestamp():
    if rng.random() < 0.3:
        return f"{rng.randint(1, 2)}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
    return f"{rng.randint(0, 59)}:{rng.randint(0, 59):02d}"


def song():
    name = pick(SONGS)
    return pick([name, f"「{name}」", f"『{name}』", name]) if rng.random() < 0.6 else name


# --- ham ------------------------------------------------------------------------------------

# Reactions that read well after an intensifier (「まじで最高」, 「今日の衣装かわいい」).
JA_REACTIONS = ["最高", "かわいい", "かっこいい", "神", "神曲", "尊い", "えぐい", "やばい", "すごい",
                "うまい", "天才", "泣いた", "鳥肌", "エモい", "好き", "大好き", "きれい", "かわよ",
                "さすが", "ナイス", "優勝", "助かる", "声きれい", "感動", "いい曲", "天使", "上手",
                "圧巻", "泣ける", "ぐっときた", "沁みる", "ハモリ最高", "声量えぐ", "高音きれい",
                "かわいすぎる", "うますぎる", "尊すぎる", "やばすぎ", "好きすぎる", "しんどい", "むり好き",
                "笑った", "いいね", "楽しい", "楽しすぎる", "エモすぎ", "ほっこり", "癒される"]
# Words that stand alone: greetings, interjections, replies.
JA_INTERJECTIONS = ["おお", "うおお", "きたー", "キター", "待ってた", "ありがとう", "おつ", "乙",
                    "おつかれ", "お疲れさまでした", "わかる", "それな", "たしかに", "なるほど", "まじか",
                    "えっ", "ほんと？", "うそでしょ", "笑", "草", "大草原", "ワロタ", "あはは", "ふふ",
                    "拍手", "おめでとう", "おかえり", "こんばんは", "こんにちは", "おはよう", "初見です",
                    "はじめまして", "ばんわ", "待機", "きてた", "ただいま", "これ好き", "ありがてぇ",
                    "ブラボー", "いえーい", "ひゃー", "うわー", "よっしゃ", "はい", "了解", "ナイスー"]
JA_PREFIX = ["まじで", "ほんとに", "めっちゃ", "ガチで", "今日も", "やっぱり", "え、", "いや",
             "うわ", "もう", "ああ", "今日の衣装", "さっきの曲", "この曲", "ここ", "声", "今の"]
JA_SUFFIX = ["", "", "！", "!!", "！！！", "〜", "ー", "ーー", "w", "ｗｗ", "www", "笑", "…",
             "です", "！？", "ですね", "だね", "じゃん", "！！", "すぎ"]

EN_REACTIONS = ["lol", "lmao", "omg", "wow", "nice", "gg", "ggs", "pog", "poggers", "first", "hi",
                "hello", "hey chat", "yooo", "LETS GOOO", "so good", "love it", "love this song",
                "banger", "this slaps", "chills", "goosebumps", "crying", "im crying", "beautiful",
                "amazing", "incredible", "goated", "legend", "queen", "king", "clutch", "rip",
                "o7", "<3", "haha", "hahaha", "xD", ":D", ":)", "based", "so cute", "too cute",
                "wholesome", "insane", "perfect", "flawless", "wooo", "yesss", "encore", "bravo",
                "what a voice", "hype", "vibes", "immaculate vibes", "no way", "huge", "so true",
                "KEKW", "Kappa", "LUL", "PogChamp", "monkaS", "EZ", "W", "big W", "good evening"]
EN_SUFFIX = ["", "", "", "!", "!!", "!!!", " lol", " haha", "?", "~", " omg", " :)", " <3"]


def ja_reaction():
    if rng.random() < 0.45:
        text = pick(JA_INTERJECTIONS) + pick(JA_SUFFIX[:14])
    else:
        word = pick(JA_REACTIONS)
        # Copulas only after what can take them: 「かわいいです」 but not 「泣いただね」.
        unfit = {"た": ("です", "ですね", "だね", "じゃん"), "る": ("です", "ですね", "だね"), "い": ("だね",)}
        suffixes = [s for s in JA_SUFFIX[:-1] if s not in unfit.get(word[-1], ())]
        text = maybe(pick(JA_PREFIX), 0.5) + word + pick(suffixes)
    return text + maybe(pick(EMOJI_HAM), 0.25)


def en_reaction():
    text = pick(EN_REACTIONS) + pick(EN_SUFFIX)
    if rng.random() < 0.15:
        text = text.upper()
    return text + maybe(" " + pick(EMOJI_HAM), 0.2)


def applause():
    return pick([
        "8" * rng.randint(3, 16),
        "８" * rng.randint(3, 12),
        "8" * rng.randint(4, 12) + pick(["", "!", "！", " 最高", " すごい", "👏"]),
        "パチパチ" * rng.randint(1, 3),
        "👏" * rng.randint(1, 6),
        "拍手" + "8" * rng.randint(3, 9),
        "clap clap",
        "👏👏 " + "8" * rng.randint(3, 8),
    ])


def laugh():
    return pick([
        "w" * rng.randint(1, 5),
        "ｗ" * rng.randint(1, 5),
        "草",
        "草" * rng.randint(2, 3),
        "大草原",
        "草生える",
        "lol",
        "lmaooo",
        "haha" * rng.randint(1, 3),
        "😂" * rng.randint(1, 4),
        "笑",
        "(笑)",
        "ワロタ",
        "xD",
    ]) + maybe(pick(["", " " + pick(["今の", "つぼった", "そこ", "腹痛い", "so funny", "i cant"])]), 0.4)


JA_SENTENCES = [
    lambda: f"{song()}のイントロで泣いた",
    lambda: f"{song()}きたああ",
    lambda: f"{song()}歌ってほしい",
    lambda: f"リクエスト：{pick(SONGS)}",
    lambda: f"{pick(SONGS)}お願いします！",
    lambda: f"次{song()}かな？",
    lambda: f"{pick(PLACES_JA)}から見てます！",
    lambda: f"{pick(PLACES_JA)}から参戦",
    lambda: f"{pick(PLACES_JA)}は雨です",
    lambda: f"{timestamp()} ここ好き",
    lambda: f"{timestamp()} {pick(['神', '鳥肌', '最高', 'ハモリ', '高音', 'ここすき', '泣いた'])}",
    lambda: f"{pick(MEMBERS)}{pick(['ちゃん', 'くん', 'さん', ''])}{pick(JA_REACTIONS)}",
    lambda: f"{pick(MEMBERS)}の誕生日おめでとう！",
    lambda: f"{pick(MEMBERS)}の声が好きすぎる",
    lambda: f"次のライブいつですか？",
    lambda: f"アーカイブ残りますか？",
    lambda: f"この曲なんて名前？",
    lambda: f"今の曲名わかる人いますか",
    lambda: f"音{pick(['小さい', '大きい', 'ズレてる', '途切れた'])}かも",
    lambda: f"画面{pick(['止まった', '固まった', 'カクカクする'])}？",
    lambda: f"配信ありがとう{pick(['', '！', 'ございます', '〜'])}",
    lambda: f"初見です、{pick(SONGS)}から来ました",
    lambda: f"{rng.randint(2, 30)}回目のライブ参加です",
    lambda: f"ペンライト{pick(['赤', '青', '黄色', '緑', '紫', 'ピンク'])}にしてる",
    lambda: f"グッズ{pick(['買った', '届いた', '売り切れてた', 'かわいい'])}",
    lambda: f"物販の列すごい",
    lambda: f"明日仕事だけど最後まで見る",
    lambda: f"{pick(['ラーメン', 'ピザ', 'カレー', 'お寿司', 'アイス', '唐揚げ'])}食べながら見てる",
    lambda: f"今日の衣装{pick(['かわいい', 'かっこいい', '好き', '似合ってる'])}",
    lambda: f"ギターソロ{pick(['えぐい', 'かっこよすぎ', '最高'])}",
    lambda: f"ドラム{pick(['すごい', 'うますぎ', '走ってて好き'])}",
    lambda: f"ドンマイ{pick(['', '！', 'ドンマイ'])}",
    lambda: f"惜しい{pick(['', '！', 'ー'])}",
    lambda: f"もう一回{pick(['', '聞きたい', 'お願い'])}",
    lambda: f"アンコール{pick(['', '！', '！アンコール！'])}",
    lambda: f"おつかれさまでした、{pick(['また来ます', 'ゆっくり休んで', '楽しかった'])}",
    lambda: f"今北、{pick(['何の曲？', '間に合った', 'もう終盤？'])}",
    lambda: f"{pick(['仕事', '学校', 'バイト'])}終わりに間に合った",
    lambda: f"{pick(['ボス', 'ラスボス', '中ボス'])}強すぎ",
    lambda: f"今のプレイうますぎ",
    lambda: f"そのアイテム取って！",
    lambda: f"右から来てる！",
    lambda: f"がんばれー",
    lambda: f"{pick(MEMBERS)}がんばれ！",
    lambda: f"ディナーナイフでステーキ切るシーンかわいい",
    lambda: f"{rng.randint(1, 9)}年前から好きです",
    lambda: f"同時視聴{rng.randint(2, 40)}万人すごい",
    lambda: f"登録者{rng.randint(10, 200)}万人おめでとう！",
    lambda: f"{rng.randint(100, 999)}万回再生おめでとう",
    lambda: f"チャンネル登録しました！",
    lambda: f"高評価押した",
    lambda: f"グッズどこで買えますか？",
    lambda: f"公式サイトにセトリ載ってるよ",
    lambda: f"公式ショップもう開いてる？",
    lambda: f"スパムうざい、無視しよ",
    lambda: f"URL貼ってる人は無視で",
    lambda: f"モデレーターさんお疲れさまです",
    lambda: f"チケット当たった人いる？",
    lambda: f"抽選はずれたから配信で見てる",
    lambda: f"{pick(['ライブ', '配信', '新曲'])}のお知らせ待ってました",
    lambda: f"字幕ありがたい",
    lambda: f"この後の雑談も楽しみ",
    lambda: f"{pick(['母', '妹', '友達', '彼氏', '娘'])}と一緒に見てる",
    lambda: f"猫も一緒に見てます",
    lambda: f"イヤホン推奨",
    lambda: f"音源より生のほうが好き",
    lambda: f"MCおもしろい",
    lambda: f"メンバー紹介きた",
    lambda: f"おやすみなさい",
    lambda: f"{pick(SONGS)}で締めるの最高",
]

EN_SENTENCES = [
    lambda: f"this song is {pick(['amazing', 'so good', 'a masterpiece', 'my favorite', 'stuck in my head'])}",
    lambda: f"the {pick(['chorus', 'bridge', 'intro', 'outro', 'guitar solo', 'harmony', 'drop'])} was {pick(['perfect', 'insane', 'so clean', 'beautiful', 'unreal'])}",
    lambda: f"{pick(['hi', 'hello', 'greetings', 'love'])} from {pick(PLACES_EN)}",
    lambda: f"watching from {pick(PLACES_EN)}, it's {rng.randint(1, 11)} {pick(['am', 'pm'])} here",
    lambda: "what's the name of this song?",
    lambda: "song name anyone?",
    lambda: "is there going to be an archive?",
    lambda: "will this be on the VOD?",
    lambda: "when is the next stream?",
    lambda: f"can you play {pick(SONGS)}?",
    lambda: f"please sing {pick(SONGS)} next",
    lambda: f"{pick(SONGS)} please!!",
    lambda: f"{timestamp()} best part",
    lambda: f"{timestamp()} the high note",
    lambda: f"{timestamp()} {pick(['chills', 'lol', 'that face', 'the key change', 'here'])}",
    lambda: "audio is a bit quiet",
    lambda: "stream is lagging for me",
    lambda: "anyone else hear the echo?",
    lambda: "first time catching it live",
    lambda: f"been a fan since {rng.randint(2012, 2025)}",
    lambda: f"happy birthday {pick(MEMBERS)}!",
    lambda: "thanks for the stream",
    lambda: "good night everyone",
    lambda: "the drummer is insane",
    lambda: "that key change tho",
    lambda: f"who else is here from {pick(['twitter', 'tiktok', 'the last stream', 'reddit', 'the radio'])}?",
    lambda: "i have work tomorrow but worth it",
    lambda: "my cat is watching too lol",
    lambda: f"{pick(MEMBERS)} looks so happy tonight",
    lambda: f"{pick(MEMBERS)} carrying the vocals",
    lambda: "I just subscribed!",
    lambda: "just hit the like button",
    lambda: "did anyone win the giveaway last time?",
    lambda: "where can I buy the merch?",
    lambda: "is the official shop open yet?",
    lambda: "the setlist is in the description",
    lambda: "free tickets? I wish lol",
    lambda: "I'd pay money to hear this again",
    lambda: "I messaged the mods about the audio",
    lambda: "tickets sold out in 2 minutes last time",
    lambda: "ignore the spam guys",
    lambda: "mods please ban the bots",
    lambda: "crypto bots in chat again lol",
    lambda: f"{rng.randint(2, 50)}k viewers lets go",
    lambda: f"congrats on {rng.randint(1, 9)} million subs!",
    lambda: "nice shot",
    lambda: "that was so close",
    lambda: "go go go",
    lambda: "behind you!",
    lambda: "don't give up",
    lambda: "you got this",
    lambda: "the lighting tonight is gorgeous",
    lambda: "is this the acoustic version?",
    lambda: "cover or original?",
    lambda: "can't believe I'm finally seeing this live",
    lambda: "everyone in chat is so nice",
    lambda: "see you next week!",
    lambda: "bye chat",
    lambda: f"learning japanese because of {pick(MEMBERS)}",
    lambda: "日本語わからないけど最高",
    lambda: "arigatou!!",
    lambda: "kawaii",
    lambda: "sugoi",
    lambda: f"{pick(SONGS)} live hits different",
    lambda: "this crowd is so loud",
    lambda: "the bass is shaking my room",
    lambda: "my headphones are not ready",
    # Greetings and the small talk of a chat: the words a scam's "welcome bonus" or "hello
    # dear" borrow, which alone must not read as spam.
    lambda: f"{pick(['welcome', 'Welcome', 'welcome back', 'welcome in'])}{pick(['', ',', '!'])} {pick(['everyone', 'everybody', 'all', 'chat', 'new viewers', 'newcomers', 'friends'])}{pick(['', '!', '!!', ' :)'])}",
    lambda: f"welcome to the {pick(['stream', 'show', 'party', 'live', 'chat', 'family'])}{pick(['', '!', ' everyone'])}",
    lambda: f"{pick(['hello', 'hi', 'hey', 'good evening', 'good morning', 'good afternoon', 'evening'])} {pick(['everyone', 'everybody', 'chat', 'all', 'guys', 'friends', 'people'])}{pick(['', '!', '!!', '~', ' :D'])}",
    lambda: f"welcome {pick(MEMBERS)}!",
    lambda: f"{pick(['thank you', 'thanks', 'thx'])} {pick(['everyone', 'all', 'so much', 'for coming', 'for watching', 'for the music', 'for tonight', 'for having us'])}",
    lambda: f"{pick(['enjoy the show', 'have fun', 'enjoy'])} {pick(['everyone', 'all', 'guys', 'tonight'])}",
    lambda: f"so {pick(['glad', 'happy', 'excited', 'lucky'])} to be here{pick(['', ' tonight', ' with you all'])}",
    lambda: f"{pick(['ready', 'so ready', 'not ready'])} for {pick(['tonight', 'this', 'the encore', 'the next song', 'the second half'])}",
    lambda: f"{pick(['long time no see', 'missed you all', 'back again', 'made it just in time', 'just got home', 'sorry I am late'])}{pick(['', '!', ' lol', ' chat'])}",
    lambda: f"happy {pick(['friday', 'saturday', 'sunday', 'monday', 'new year', 'holidays', 'anniversary'])} {pick(['everyone', 'chat', 'all'])}",
    lambda: f"see you {pick(['all', 'everyone', 'guys'])} {pick(['next time', 'at the next show', 'tomorrow', 'soon', 'in Osaka'])}",
    lambda: f"{pick(['this is my first', 'my first', 'my second', 'my tenth'])} {pick(['stream', 'live', 'concert', 'show'])}{pick(['', ' here', ' ever', '!'])}",
    lambda: f"{pick(['greetings', 'hello', 'hi'])} from {pick(['work', 'school', 'the train', 'bed', 'the kitchen', 'my car'])}",
    lambda: f"who is {pick(['watching', 'here', 'still up', 'awake'])} from {pick(PLACES_EN)}?",
    lambda: f"{pick(['turn', 'turning'])} the volume {pick(['up', 'all the way up'])}",
    lambda: f"the {pick(['stage', 'crowd', 'band', 'sound', 'camera work', 'choreo'])} {pick(['looks', 'sounds', 'is'])} {pick(['great', 'amazing', 'so good', 'incredible', 'beautiful'])} {pick(['tonight', 'today', 'as always', ''])}",
    lambda: f"{pick(['can', 'will'])} {pick(MEMBERS)} {pick(['say hi', 'read chat', 'sing one more', 'come back'])}?",
    lambda: f"{pick(['best', 'greatest', 'happiest'])} {pick(['night', 'day', 'weekend', 'birthday'])} {pick(['ever', 'of my life', 'this year'])}",
]


def mixed_sentence():
    base = pick(JA_SENTENCES)() if rng.random() < 0.55 else pick(EN_SENTENCES)()
    if rng.random() < 0.2:
        base += pick(["！", "!", "!!", "〜", "w", " lol", "笑", "…"])
    if rng.random() < 0.15:
        base += " " + pick(EMOJI_HAM)
    if rng.random() < 0.08:
        base = base.capitalize()
    return base


# Viewers write numbers too: counts, years, seat and song numbers, a number to tell their
# own comments apart. Without these a number alone would read as a phone number or a code.
def number():
    digits = rng.randint(1, 6)
    value = str(rng.randint(10 ** (digits - 1), 10 ** digits - 1))
    if rng.random() < 0.3:
        value = value[0] + "0" * (len(value) - 1)
    return pick([value, value, value, f"#{value}", f"{value}回目", f"{value}人", f"{value}年",
                 f"{value}番", f"No.{value}", f"{value}曲目", f"({value})"])


def numbered(text):
    if rng.random() < 0.12:
        return pick([f"{text} {number()}", f"{number()} {text}", f"{text}{number()}"])
    return text


def ham():
    kind = rng.random()
    if kind < 0.22:
        return numbered(ja_reaction())
    if kind < 0.37:
        return numbered(en_reaction())
    if kind < 0.45:
        return applause()
    if kind < 0.52:
        return laugh()
    return numbered(mixed_sentence())


# --- spam -----------------------------------------------------------------------------------

SYLLABLES = ["ka", "zu", "mi", "ro", "ne", "to", "shi", "ba", "lu", "xo", "vip", "pay", "win", "get",
             "gift", "free", "cash", "bonus", "lucky", "promo", "deal", "coin", "earn", "star"]
TLDS = [".com", ".net", ".xyz", ".info", ".top", ".click", ".site", ".online", ".shop", ".io", ".me",
        ".jp", ".biz", ".live", ".link", ".fun"]
SHORTENERS = ["bit.ly/", "tinyurl.com/", "t.co/", "is.gd/", "cutt.ly/", "rb.gy/", "shorturl.at/"]


def code(length):
    return "".join(pick("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(length))


def url():
    if rng.random() < 0.35:
        host_path = pick(SHORTENERS) + code(rng.randint(4, 8))
    else:
        host = "".join(pick(SYLLABLES) for _ in range(rng.randint(2, 3)))
        host += maybe(str(rng.randint(1, 99)), 0.3)
        host_path = host + pick(TLDS) + maybe("/" + pick(["claim", "gift", "win", "go", "r", "p", "join", "event", code(5)]), 0.6)
    scheme = pick(["https://", "http://", "https://", "", "hxxp://", "https://www."])
    link = scheme + host_path
    if rng.random() < 0.08:
        link = link.replace(".", "[.]")
    if rng.random() < 0.06:
        link = to_fullwidth(link)
    return link


def handle():
    name = pick(["yuki", "crypto", "mika", "money", "rich", "lucky", "sakura", "ken", "btc", "fx",
                 "aoi", "trader", "coach", "vip", "jun", "haru", "mentor", "free", "gift", "daily"])
    name += pick(["", "_", "."]) + pick(["", "official", "jp", "777", "88", "99", "2025", "life", "pro"])
    where = pick(["@", "@", "LINE: ", "LINE ID ", "telegram @", "TG: @", "IG @", "insta @", "WhatsApp +81 90 "])
    if where.startswith("WhatsApp"):
        return where + f"{rng.randint(1000, 9999)} {rng.randint(1000, 9999)}"
    return where + name


AMOUNTS_JA = ["10万円", "5万円", "100万円", "3万円分", "1万円", "50万", "30万円", "5000円分",
              "20万円", "月収100万", "日給3万", "一万円", "現金10万円"]
AMOUNTS_EN = ["$500", "$1,000", "$5000", "$250", "$10,000", "1000 USD", "$300 a day", "$2k a week"]
PRIZES_JA = ["iPhone16", "PS5", "Amazonギフト券", "AirPods", "ギフトカード", "ライブチケット", "限定グッズ",
             "現金", "Switch2", "高級時計", "ブランドバッグ"]
PRIZES_EN = ["iPhone 16", "PS5", "a $500 gift card", "AirPods", "free tickets", "Robux", "V-Bucks",
             "a MacBook", "an Amazon gift card", "VIP passes", "free merch", "Steam codes"]
COINS = ["BTC", "ETH", "bitcoin", "USDT", "SOL", "new token", "DOGE", "メタバース銘柄", "仮想通貨", "NFT"]


def to_fullwidth(text):
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def spaced(text):
    return " ".join(text)


def evasive(text):
    """What spammers do to dodge filters: full-width, spaced letters, odd capitals."""
    roll = rng.random()
    if roll < 0.08:
        return to_fullwidth(text)
    if roll < 0.14:
        words = text.split(" ")
        index = rng.randrange(len(words))
        if 2 < len(words[index]) < 9:
            words[index] = spaced(words[index])
        return " ".join(words)
    if roll < 0.24:
        return text.upper()
    return text


def spam_tail():
    return maybe(pick(EMOJI_SPAM) * rng.randint(1, 3), 0.4) + maybe(pick(["!!", "！！", "‼", "!!!", "☆", "★"]), 0.3)


SCAMS = [
    lambda: f"{pick(['おめでとうございます', '当選おめでとう', '【当選】', '祝'])}！{pick(PRIZES_JA)}が当選しました！{url()}から受け取り",
    lambda: f"今すぐ登録で{pick(AMOUNTS_JA)}プレゼント！ {url()}",
    lambda: f"先着{rng.randint(10, 500)}名様に{pick(PRIZES_JA)}無料配布中 {url()}",
    lambda: f"【当選】{pick(['視聴者', 'ファン', 'あなた'])}様 おめでとうございます 受取はこちら {url()}",
    lambda: f"{pick(AMOUNTS_JA)}もらえるキャンペーン実施中→{url()}",
    lambda: f"LINE追加で{pick(AMOUNTS_JA)}GET {handle()}",
    lambda: f"{pick(['配信者', '運営', '公式'])}からのプレゼント企画！{url()} で{pick(PRIZES_JA)}",
    lambda: f"コメントした人全員に{pick(AMOUNTS_JA)}配布中！プロフ見て",
    lambda: f"Free giveaway!! DM me to claim your prize {url()}",
    lambda: f"Congrats! You've been selected to win {pick(PRIZES_EN)}. Claim at {url()}",
    lambda: f"{rng.randint(5, 100)} lucky viewers get {pick(PRIZES_EN)} free, visit {url()}",
    lambda: f"I'm giving away {pick(AMOUNTS_EN)} to my followers, DM me",
    lambda: f"claim your free {pick(PRIZES_EN)} before it's gone {url()}",
    lambda: f"{pick(['GIVEAWAY', 'Giveaway time', 'FREE GIFT'])}: {pick(PRIZES_EN)} for the first {rng.randint(10, 200)} to sign up {url()}",
    lambda: f"winner announced!! check your DMs and reply with your {pick(['address', 'card number', 'email', 'phone'])}",
    lambda: f"you won {pick(PRIZES_EN)}! message {handle()} to collect",
]

MONEY = [
    lambda: f"Invest {pick(AMOUNTS_EN)} in {pick(COINS)} and get {rng.randint(3, 20)}x returns guaranteed, contact {handle()}",
    lambda: f"I made {pick(AMOUNTS_EN)} this week trading with {pick(['Mrs. Anna', 'Mr. James', 'my mentor', 'coach Lisa'])}, message {pick(['her', 'him'])} on {handle()}",
    lambda: f"仮想通貨で月{pick(AMOUNTS_JA)}稼げる方法教えます {url()}",
    lambda: f"{pick(COINS)}の爆上げ銘柄を無料で配信中 {handle()}",
    lambda: f"副業で{pick(AMOUNTS_JA)}！スマホだけでOK {url()}",
    lambda: f"在宅で{pick(AMOUNTS_JA)}稼ぐ方法 {handle()}",
    lambda: f"Work from home and earn {pick(AMOUNTS_EN)}, no experience needed {url()}",
    lambda: f"{pick(COINS)} is about to moon 🚀 join the signal group {handle()}",
    lambda: f"double your {pick(COINS)} in 24 hours, send to the wallet at {url()}",
    lambda: f"誰でも簡単に{pick(AMOUNTS_JA)}稼げる！詳しくはプロフのリンクから",
    lambda: f"FXで{pick(AMOUNTS_JA)}達成しました。やり方知りたい人は{handle()}まで",
    lambda: f"お金に困ってる人、{handle()}に連絡ください。{pick(AMOUNTS_JA)}すぐ貸します",
    lambda: f"passive income {pick(AMOUNTS_EN)} guaranteed, ask me how",
    lambda: f"stop wasting time, earn {pick(AMOUNTS_EN)} from your phone {url()}",
]

PHISHING = [
    lambda: f"Your account will be suspended, verify now at {url()}",
    lambda: f"【重要】アカウントが停止されました。{url()} で確認してください",
    lambda: f"Security alert: unusual login, confirm your password at {url()}",
    lambda: f"{pick(['Amazon', 'Apple', 'PayPal', '楽天', 'メルカリ'])}の支払いに問題があります {url()}",
    lambda: f"{pick(['YouTube', 'Twitch', 'Niconico'])} support: your channel has a copyright strike, appeal here {url()}",
    lambda: f"お客様のカードが不正利用されています。至急 {url()} で本人確認を",
    lambda: f"verify your age to keep watching {url()}",
    lambda: f"配信を見続けるにはログインが必要です→{url()}",
    lambda: f"your ticket order failed, re-enter your card at {url()}",
    lambda: f"チケットの当選確認はこちら（期限今日まで）{url()}",
]

ADS = [
    lambda: f"follow my channel for daily {pick(['covers', 'gaming', 'memes', 'music', 'ASMR'])}!! {maybe(url(), 0.6)}",
    lambda: f"sub4sub anyone? {handle()}",
    lambda: f"check out my new video {url()}",
    lambda: f"buy followers cheap at {url()}",
    lambda: f"get {rng.randint(1, 50)}k followers in 24h {url()}",
    lambda: f"{rng.randint(1, 10)}000人フォロワー増やします 格安 {url()}",
    lambda: f"フォロワー買うならここ {url()}",
    lambda: f"チャンネル登録お願いします！{handle()}で毎日配信中",
    lambda: f"僕の配信も見てください {url()}",
    lambda: f"激安ブランド品 {rng.randint(5, 9)}0%OFF {url()}",
    lambda: f"cheap {pick(['Ray-Ban', 'Rolex', 'Nike', 'Gucci', 'designer bags'])} {rng.randint(5, 9)}0% off today only {url()}",
    lambda: f"best {pick(['VPN', 'gaming chairs', 'phone cases', 'supplements'])} shop, free shipping {url()}",
    lambda: f"出会いを探してる人は {url()}",
    lambda: f"lonely tonight? {pick(['chat with me', 'meet singles'])} at {url()}",
    lambda: f"promo code {code(6).upper()} for {rng.randint(2, 9)}0% off at {url()}",
    lambda: f"再生数{rng.randint(1, 10)}万回保証！格安で宣伝します {url()}",
    lambda: f"like and follow me back {handle()}",
    lambda: f"promote your stream to 10k viewers, DM {handle()}",
    lambda: f"view bot for sale, cheapest price {url()}",
    lambda: f"痩せるサプリ今だけ無料 {url()}",
    lambda: f"ライブチケット余ってます、定価以下で譲ります {handle()}",
    lambda: f"selling tickets for tonight cheap, DM {handle()}",
    lambda: f"I stream too, come say hi {url()}",
    lambda: f"{pick(['pls', 'please', 'go'])} {pick(['sub to', 'follow', 'watch'])} my {pick(['channel', 'stream', 'covers'])} {handle()}",
    lambda: f"プロフのURLから限定動画見れます",
]

FLOOD_UNITS = ["w", "ｗ", "草", "あ", "ー", "!", "?", "😂", "8", "a", "お", "う", "！", "🔥", "〜", "え", "ぴ"]
FLOOD_WORDS = ["BUY", "spam", "lol", "草", "follow me", "見て", "subscribe", "ああ", "free", "うるさい",
               "LOL", "ww", "pog", "ウェーイ", "hello", "はい", "ぽよ", "bot", "へい"]


def flood():
    roll = rng.random()
    if roll < 0.45:
        unit = pick(FLOOD_UNITS)
        length = rng.randint(25, 60) if unit == "8" else rng.randint(12, 50)
        return maybe(pick(["", "あ", "え", "お", "w"]), 0.2) + unit * length
    if roll < 0.85:
        word = pick(FLOOD_WORDS)
        return pick([" ", "", "　", "! "]).join([word] * rng.randint(6, 15))
    return (pick(SCAMS + ADS)() + " ") * rng.randint(2, 3)


ABUSE_JA = ["つまらん", "下手くそ", "へたくそすぎ", "消えろ", "きもい", "キモすぎ", "うざい", "帰れ",
            "やめちまえ", "才能ない", "音痴", "ブサイク", "ゴミ配信", "見る価値なし", "金返せ",
            "二度と歌うな", "引退しろ", "声むり", "このグループ終わってる", "クソつまらん", "黙れ",
            "下手すぎて聞いてられない", "オワコン", "時間の無駄", "顔だけ", "調子乗んな", "辞めろ",
            "見ててイライラする", "存在が迷惑", "よくこれで金取れるな", "さっさと終われ"]
ABUSE_EN = ["you suck", "worst singer ever", "nobody cares", "go away loser", "shut up", "this is trash",
            "trash stream", "so boring, quit", "you can't sing", "cringe", "uninstall", "what a clown",
            "so ugly", "get off the stage", "idiot", "pathetic", "talentless hack", "lame af",
            "stop singing", "you're a joke", "worst band alive", "dumbest streamer", "go cry",
            "refund my ticket, this is garbage", "no talent at all", "everyone hates you", "loser"]


def abuse():
    target = pick(["", "", pick(MEMBERS) + pick(["", "、", " ", "は", "お前"]), "お前", "こいつ", "この人"])
    if rng.random() < 0.55:
        text = target + pick(ABUSE_JA) + pick(["", "", "！", "w", "ｗｗ", "。", "まじで", "よ"])
    else:
        who = pick(["", "", pick(MEMBERS) + " ", "you ", "this band ", "dude "])
        text = who + pick(ABUSE_EN) + pick(["", "", "!", " lol", ".", " fr", " honestly"])
    return text


def spam():
    kind = rng.random()
    if kind < 0.24:
        text = pick(SCAMS)()
    elif kind < 0.40:
        text = pick(MONEY)()
    elif kind < 0.50:
        text = pick(PHISHING)()
    elif kind < 0.72:
        text = pick(ADS)()
    elif kind < 0.84:
        return flood()
    else:
        return abuse()
    return evasive(text.strip()) + spam_tail()


# --- output ---------------------------------------------------------------------------------


def clean(text):
    return " ".join(text.replace("\t", " ").split()) if text.strip() else ""


def collect(make, count):
    lines = []
    seen = set()
    attempts = 0
    while len(lines) < count and attempts < count * 50:
        attempts += 1
        text = clean(make())
        if text and len(text) <= 200 and text not in seen:
            seen.add(text)
            lines.append(text)
    return lines


def main():
    labelled = [("ham", text) for text in collect(ham, HAM_LINES)]
    ham_texts = {text for _, text in labelled}
    labelled += [("spam", text) for text in collect(spam, SPAM_LINES) if text not in ham_texts]
    rng.shuffle(labelled)
    with open(OUT, "w", encoding="utf-8", newline="\n") as out:
        out.write("# matsuri live-comment spam corpus: label<TAB>text. Written by generate.py; do not edit by hand.\n")
        for label, text in labelled:
            out.write(f"{label}\t{text}\n")


if __name__ == "__main__":
    main()
