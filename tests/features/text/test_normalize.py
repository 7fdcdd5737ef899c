import pytest

from features.text.normalize import normalize, stem, stems, tokenize


def test_normalize_casefolds_strips_accents_and_punctuation():
    assert normalize("  Trop CHER !!  Vraiment… d’autres   fournisseurs? ") == (
        "trop cher vraiment d autres fournisseurs"
    )
    assert normalize("Più licenze, perché è l'ora") == "piu licenze perche e l ora"
    assert normalize("Mise en Œuvre") == "mise en oeuvre"
    assert normalize("don't") == "don t"


def test_tokenize_keeps_clause_marks_but_not_word_inner_punctuation():
    assert tokenize("No, we re-new: ok") == ["no", ",", "we", "re", "new", ":", "ok"]
    assert tokenize("wait - done") == ["wait", "-", "done"]


@pytest.mark.parametrize(
    "language, family",
    [
        ("en", ["renew", "renewing", "renewed", "renews"]),
        ("en", ["vendor", "vendors"]),
        ("en", ["price", "prices", "pricing", "priced"]),
        ("en", ["plan", "plans", "planned", "planning"]),
        ("fr", ["renouveler", "renouvelons", "renouvelé", "renouvelée", "renouvellement"]),
        ("fr", ["fournisseur", "fournisseurs"]),
        ("fr", ["satisfait", "satisfaits", "satisfaite", "satisfaites"]),
        ("fr", ["cher", "chers", "chère", "chères"]),
        ("fr", ["coûteux", "coûteuse", "coûteuses"]),
        ("it", ["rinnovare", "rinnoviamo", "rinnoveremo", "rinnovato", "rinnovo"]),
        ("it", ["fornitore", "fornitori"]),
        ("it", ["costoso", "costosa", "costosi", "costose"]),
        ("it", ["chiaro", "chiara", "chiari", "chiare"]),
    ],
)
def test_inflected_forms_share_a_stem(language, family):
    assert len({stem(normalize(w), language) for w in family}) == 1


def test_different_words_keep_different_stems():
    assert stem("cher", "fr") != stem("chercher", "fr")
    assert stem("clair", "fr") != stem("classe", "fr")
    assert stems("renewal", "en") != stems("renew", "en")


def test_unknown_language_is_left_alone():
    assert stem("renewing", "de") == "renewing"
