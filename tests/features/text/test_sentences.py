from features.text.sentences import split_sentences


def test_splits_on_terminal_punctuation_and_keeps_it():
    assert split_sentences("We plan to renew. It is too expensive! Really?") == [
        "We plan to renew.",
        "It is too expensive!",
        "Really?",
    ]


def test_mixed_marks_end_one_sentence():
    assert split_sentences("Seriously?! We waited 3 days... Fine") == [
        "Seriously?!",
        "We waited 3 days...",
        "Fine",
    ]


def test_abbreviations_do_not_end_sentences():
    text = "Some modules, e.g. the reporting one, are unclear. Others i.e. billing work."
    assert split_sentences(text) == [
        "Some modules, e.g. the reporting one, are unclear.",
        "Others i.e. billing work.",
    ]
    assert split_sentences("Des modules, p. ex. le reporting, sont flous. Merci") == [
        "Des modules, p. ex. le reporting, sont flous.",
        "Merci",
    ]
    assert split_sentences("Report, fatture ecc. sono lenti. Grazie") == [
        "Report, fatture ecc. sono lenti.",
        "Grazie",
    ]


def test_decimals_and_versions_stay_inside_a_sentence():
    assert split_sentences("Price went up 2.5 times in v3.1 this year. Ouch") == [
        "Price went up 2.5 times in v3.1 this year.",
        "Ouch",
    ]
    assert split_sentences("Le prix: 1.200,50 EUR. Trop cher") == ["Le prix: 1.200,50 EUR.", "Trop cher"]


def test_newlines_end_sentences_even_without_punctuation():
    text = "Notes from QBR\n- need more seats\r\n\n- budget cut next year  \nthanks"
    assert split_sentences(text) == ["Notes from QBR", "- need more seats", "- budget cut next year", "thanks"]


def test_closing_quotes_stay_with_their_sentence():
    assert split_sentences('He said "too expensive." Then left.') == ['He said "too expensive."', "Then left."]


def test_empty_inputs():
    assert split_sentences(None) == []
    assert split_sentences("") == []
    assert split_sentences("  \n\n ") == []
