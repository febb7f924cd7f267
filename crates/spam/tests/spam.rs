//! The spam check as the live crate uses it: NG-word variants, floods, near-duplicates, the
//! default model's answers on clear and borderline comments, the stored model, and the
//! held-out figures on the project corpus (shown with `--nocapture`).

use matsuri_spam::{
    BLOCK, BORDERLINE_EXAMPLE, HOLD, Model, ModelError, NEAR_DUPLICATE, NgWords, corpus,
    default_model, evaluate, is_flood, normalize, similarity,
};

fn knife() -> NgWords {
    NgWords::new(&["ナイフ"], &["ディナーナイフ"])
}

#[test]
fn every_variant_of_an_ng_word_is_refused() {
    let words = knife();
    for comment in [
        "ナイフ",
        "ナ イ フ",
        "ﾅｲﾌ",
        "ないふ",
        "ナ・イ・フ",
        "このナイフ高いね",
        "ナーイーフ",
        "ﾅ　ｲ　ﾌ",
    ] {
        assert_eq!(words.find(&normalize(comment)), Some("ナイフ"), "{comment}");
    }
}

#[test]
fn an_allowed_compound_passes_but_a_bare_word_beside_it_does_not() {
    let words = knife();
    assert_eq!(words.find(&normalize("ディナーナイフでステーキ")), None);
    assert_eq!(words.find(&normalize("ﾃﾞｨﾅｰﾅｲﾌ")), None);
    assert_eq!(
        words.find(&normalize("ディナーナイフとナイフ")),
        Some("ナイフ")
    );
    assert_eq!(
        words.find(&normalize("ナイフ、ディナーナイフ")),
        Some("ナイフ")
    );
    assert_eq!(words.find(&normalize("フォークとスプーン")), None);
}

#[test]
fn latin_ng_words_match_spaced_full_width_and_hyphenated_spellings() {
    let words = NgWords::new(&["scam"], &[]);
    for comment in [
        "S C A M",
        "ｓｃａｍ",
        "s-c-a-m",
        "this is a SCAM!!",
        "s.c.a.m",
    ] {
        assert_eq!(words.find(&normalize(comment)), Some("scam"), "{comment}");
    }
    assert_eq!(words.find(&normalize("scarf and cam")), None);
    assert!(!words.is_empty());
    assert!(NgWords::new::<&str>(&[], &[]).is_empty());
}

#[test]
fn normalize_is_idempotent_on_a_table_of_tricky_texts() {
    for text in [
        "",
        " ",
        "ナ イ フ",
        "ﾃﾞｨﾅｰﾅｲﾌ",
        "ｶﾞｷﾞｸﾞ ﾊﾟﾋﾟﾌﾟ",
        "か\u{3099}",
        "ｓ－ｃ～ａ〜ｍ",
        "Straße ẞ İstanbul ǅ ﬁ ㍿ ㌔",
        "α-\u{345}",
        "e-\u{301}",
        "👨\u{200D}👩\u{200D}👧 ok",
        "キタ━━━(ﾟ∀ﾟ)━━━!!",
        "  最高！！！  ",
        "한국어 ㄱㄴ \u{1100}\u{1161}",
        "①②③ ⅫⅣ ㈱",
        "\u{FEFF}bom\u{200B}zero",
        "ｰｰｰ〜〜〜---",
    ] {
        let once = normalize(text);
        assert_eq!(normalize(&once), once, "{text:?}");
    }
}

#[test]
fn normalize_is_idempotent_on_every_single_character() {
    for code in (0..=0x10FFFFu32).filter(|code| *code < 0x10000 || code % 7 == 0) {
        let Some(c) = char::from_u32(code) else {
            continue;
        };
        for text in [c.to_string(), format!("a{c}b"), format!("カ{c}")] {
            let once = normalize(&text);
            assert_eq!(normalize(&once), once, "U+{code:04X}");
        }
    }
}

#[test]
fn normalize_is_idempotent_on_generated_mixtures() {
    // Characters chosen to interact: kana and voicing marks, dashes and long marks, spaces,
    // Latin with combining accents, ligatures, Hangul jamo, invisible and emoji joiners.
    let pool: Vec<char> = "アカガｶﾞﾊﾟあかがー－‐—〜~ｰ- 　・.!！?aAｚZß\u{301}\u{308}\u{345}\u{3099}\u{309A}ﬁ㍿\u{1100}\u{1161}\u{11A8}\u{200B}\u{200D}\u{FE0F}👍8８ω\u{3C9}"
        .chars()
        .collect();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..20_000 {
        let length = (next(&mut state) % 12) as usize;
        let text: String = (0..length)
            .filter_map(|_| pool.get((next(&mut state) % pool.len() as u64) as usize))
            .collect();
        let once = normalize(&text);
        assert_eq!(normalize(&once), once, "{text:?}");
    }
}

/// xorshift64: a fixed sequence for the generated mixtures.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn floods_are_walls_of_one_character_but_laughs_and_claps_are_not() {
    assert!(is_flood(&normalize("wwwwwwwwwwww")));
    assert!(is_flood(&normalize("ーーーーーーー")));
    assert!(is_flood(&normalize("!!!!!!!!!!!!")));
    assert!(!is_flood(&normalize("www")));
    assert!(!is_flood(&normalize("lol")));
    assert!(!is_flood(&normalize("草")));
    // Clapping (8 is ぱち): common after a song on Niconico, a flood only from 20 on.
    assert!(!is_flood(&normalize("888888888888")));
    assert!(!is_flood(&normalize("8888888888888888888")));
    assert!(is_flood(&normalize("88888888888888888888")));
}

#[test]
fn near_duplicates_score_high_and_unrelated_comments_low() {
    let resend = similarity(
        &normalize("BUY FOLLOWERS at example.com!!"),
        &normalize("buy followers at example.com"),
    );
    assert!(resend >= NEAR_DUPLICATE, "{resend}");
    let unrelated = similarity(
        &normalize("buy followers at example.com"),
        &normalize("this song is amazing"),
    );
    assert!(unrelated < 0.3, "{unrelated}");
    let japanese = similarity(
        &normalize("今すぐ登録で10万円プレゼント！"),
        &normalize("今すぐ登録で10万円プレゼント!!!"),
    );
    assert!(japanese >= NEAR_DUPLICATE, "{japanese}");
}

#[test]
fn the_default_model_refuses_clear_spam() {
    let model = default_model();
    for comment in [
        "今すぐ登録で10万円プレゼント！ http://bit.ly/xxxx",
        "Free giveaway!! DM me to claim your prize http://scam.example",
    ] {
        let score = model.score(comment);
        assert!(score >= BLOCK, "{score} {comment}");
    }
}

#[test]
fn the_default_model_passes_ordinary_comments() {
    let model = default_model();
    for comment in [
        "最高！",
        "this song is amazing",
        "8888888",
        "草",
        "lol",
        "アンコール！",
        "12:34 ここ好き",
    ] {
        let score = model.score(comment);
        assert!(score < HOLD, "{score} {comment}");
    }
}

#[test]
fn the_borderline_example_is_held_for_review() {
    let score = default_model().score(BORDERLINE_EXAMPLE);
    println!("BORDERLINE_EXAMPLE {BORDERLINE_EXAMPLE:?} scores {score:.4}");
    assert!((HOLD..BLOCK).contains(&score), "{score}");
}

#[test]
fn a_stored_model_scores_exactly_like_the_original() {
    let model = default_model();
    let bytes = model.to_bytes();
    let loaded = Model::from_bytes(&bytes).expect("the model's own bytes read back");
    assert_eq!(loaded.examples(), model.examples());
    for (text, _) in corpus().into_iter().step_by(7) {
        assert_eq!(
            loaded.score(text).to_bits(),
            model.score(text).to_bits(),
            "{text}"
        );
    }
    assert_eq!(loaded.to_bytes(), bytes);
    println!(
        "default model: {} bytes, trained on {:?} (ham, spam)",
        bytes.len(),
        model.examples()
    );
}

#[test]
fn truncated_or_random_bytes_are_refused() {
    let bytes = default_model().to_bytes();
    for length in [0, 1, 4, 5, 12, bytes.len() / 2, bytes.len() - 1] {
        assert!(Model::from_bytes(&bytes[..length]).is_err(), "{length}");
    }
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for length in [3, 16, 64, 1_000, 100_000] {
        let mut random: Vec<u8> = (0..length).map(|_| next(&mut state) as u8).collect();
        assert!(Model::from_bytes(&random).is_err());
        // Even behind the right magic and version, noise is not a model.
        random.splice(0..0, *b"MSPM\x01");
        assert!(matches!(
            Model::from_bytes(&random),
            Err(ModelError::Corrupt(_) | ModelError::Truncated)
        ));
    }
}

#[test]
fn held_out_evaluation_on_the_project_corpus() {
    let examples = corpus();
    let (test, train): (Vec<_>, Vec<_>) = examples
        .iter()
        .copied()
        .enumerate()
        .partition(|(index, _)| index % 5 == 4);
    let model = Model::train(train.iter().map(|&(_, example)| example));
    println!(
        "project corpus: {} comments, trained on {}, held out every 5th ({})",
        examples.len(),
        train.len(),
        test.len()
    );
    let test: Vec<(&str, bool)> = test.into_iter().map(|(_, example)| example).collect();
    let at_block = evaluate(&model, test.iter().copied(), BLOCK);
    let at_hold = evaluate(&model, test.iter().copied(), HOLD);
    println!("  at BLOCK {BLOCK}: {at_block}");
    println!("  at HOLD  {HOLD}: {at_hold}");
    assert!(at_block.ham_blocked <= 0.01, "{at_block}");
    assert!(at_hold.accuracy >= 0.95, "{at_hold}");
}
