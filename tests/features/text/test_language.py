import pytest

from features.text.language import SHORT_TEXT_CHARS, given_language, resolve_languages
from features.text.taxonomy import LANGUAGES


@pytest.mark.parametrize(
    "text, expected",
    [
        ("We plan to renew next quarter.", "en"),
        ("Too expensive for us.", "en"),
        ("Need more seats", "en"),
        ("Nous prévoyons de renouveler.", "fr"),
        ("C'est trop cher pour nous.", "fr"),
        ("Merci pour la réponse rapide", "fr"),
        ("Prevediamo di rinnovare il contratto.", "it"),
        ("Il prezzo è troppo alto.", "it"),
        ("Servono più licenze", "it"),
    ],
)
def test_short_sentences_are_detected(text, expected):
    assert len(text) < SHORT_TEXT_CHARS
    assert resolve_languages([text]) == [expected]


def test_long_texts_are_detected():
    texts = [
        "Thanks for the call today. As discussed, the team is happy with the reporting module, "
        "but finance is worried about the price increase announced for next year.",
        "Merci pour l'appel d'aujourd'hui. Comme convenu, l'équipe est satisfaite du module de "
        "reporting, mais la finance s'inquiète de la hausse de prix annoncée pour l'an prochain.",
        "Grazie per la chiamata di oggi. Come concordato, il team è soddisfatto del modulo di "
        "reportistica, ma la finanza è preoccupata per l'aumento di prezzo annunciato.",
    ]
    assert all(len(t) >= SHORT_TEXT_CHARS for t in texts)
    assert resolve_languages(texts) == ["en", "fr", "it"]


def test_a_valid_given_language_wins_over_detection():
    texts = ["C'est trop cher pour nous."] * 5
    given = ["it", "EN", "en-US", "Italiano", "de"]
    assert resolve_languages(texts, given) == ["it", "en", "en", "it", "de"]


@pytest.mark.parametrize("label", [None, "", "  ", "unknown", "??", "und", float("nan")])
def test_missing_or_unreadable_labels_fall_back_to_detection(label):
    assert given_language(label) is None
    assert resolve_languages(["Il prezzo è troppo alto."], [label]) == ["it"]


def test_labels_in_several_spellings():
    assert [given_language(x) for x in ["fr", "FR", "fr_FR", "fr-CA", "French", "Français"]] == ["fr"] * 6
    assert given_language("pt-BR") == "pt"


def test_empty_texts_get_no_language():
    assert resolve_languages([None, "", "   "]) == [None, None, None]


def test_labels_must_line_up_with_texts():
    with pytest.raises(ValueError, match="2 texts but 1 language labels"):
        resolve_languages(["a", "b"], ["en"])


def test_detection_covers_exactly_the_taxonomy_languages():
    from features.text.language import detector

    for low_accuracy in (False, True):
        values = detector(low_accuracy).compute_language_confidence_values("hello there")
        assert {v.language.iso_code_639_1.name.lower() for v in values} == set(LANGUAGES)
