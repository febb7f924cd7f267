//! The texts of the concert pages' second round, beside the main table; looked up with
//! it as one: the sold-out notice and the best-available form.

/// (key, Japanese, English).
pub(super) const TEXTS: &[(&str, &str, &str)] = &[
    ("events.sold_out", "完売しました", "Sold out"),
    (
        "events.sold_out_hint",
        "すべての席が売り切れました。待機列から外れています。",
        "Every seat is sold; you are out of the queue.",
    ),
    (
        "events.best_title",
        "おまかせで席を選ぶ",
        "Or let us pick the best seats",
    ),
    ("events.best_quantity", "枚数", "Seats"),
    ("events.best_section", "エリア", "Section"),
    (
        "events.best",
        "並びの良席を確保する",
        "Hold the best seats together",
    ),
    ("js.best.any", "どこでも", "Any section"),
];
