"""Matching: normalization, inflection, longest match and the negation rule."""

import pytest

from features.text.matcher import Matcher


def found(matcher, sentence, language):
    return [(m.expression.bucket, m.polarity, m.negated, m.expression.text) for m in matcher.match(sentence, language)]


@pytest.fixture(scope="module")
def shipped_matcher():
    from features.text.taxonomy import load_taxonomy

    return Matcher(load_taxonomy())


@pytest.mark.parametrize(
    "language, sentence, bucket, polarity",
    [
        # DOMAIN section 4 examples and counterparts, written with case and punctuation noise
        ("en", "We PLAN to renew next quarter!", "renewal_likelihood", "green"),
        ("en", "Good news: funding allocated.", "renewal_likelihood", "green"),
        ("en", "They are looking at other VENDORS...", "renewal_likelihood", "red"),
        ("en", "A budget cut is coming", "renewal_likelihood", "red"),
        ("en", "There is payroll pressure this year", "renewal_likelihood", "red"),
        ("en", "We need more seats.", "upsell_readiness", "green"),
        ("en", "We're interested in the new module", "upsell_readiness", "green"),
        ("en", "Issue resolved with a documented workaround.", "support_friction", "green"),
        ("en", "Honestly? Too expensive.", "pricing_perception", "red"),
        ("fr", "Nous prévoyons de RENOUVELER le contrat.", "renewal_likelihood", "green"),
        ("fr", "Budget alloue pour 2025", "renewal_likelihood", "green"),  # accent missing
        ("fr", "Ils regardent d’autres fournisseurs.", "renewal_likelihood", "red"),
        ("fr", "Coupes budgétaires annoncées", "renewal_likelihood", "red"),  # plural
        ("fr", "Nous avons besoin de plus de licences", "upsell_readiness", "green"),
        ("fr", "Très intéressée par le nouveau module !", "upsell_readiness", "green"),
        ("fr", "Problème résolu avec un contournement documenté", "support_friction", "green"),
        ("fr", "C'est TROP CHER !!", "pricing_perception", "red"),
        ("fr", "Les tarifs sont trop coûteuses", "pricing_perception", "red"),  # gender
        ("it", "Prevediamo di rinnovare il contratto.", "renewal_likelihood", "green"),
        ("it", "Stanno valutando altri fornitori", "renewal_likelihood", "red"),
        ("it", "C'è stato un TAGLIO del budget", "renewal_likelihood", "red"),
        ("it", "Servono piu licenze per il team", "upsell_readiness", "green"),  # accent missing
        ("it", "Siamo interessati al nuovo modulo.", "upsell_readiness", "green"),
        ("it", "Problema risolto con un workaround documentato!", "support_friction", "green"),
        ("it", "Il prezzo è troppo alto", "pricing_perception", "red"),
        ("it", "La licenza è troppo costosa", "pricing_perception", "red"),  # gender
    ],
)
def test_shipped_taxonomy_finds_domain_cues(shipped_matcher, language, sentence, bucket, polarity):
    hits = found(shipped_matcher, sentence, language)
    assert (bucket, polarity, False) in [h[:3] for h in hits], hits


@pytest.mark.parametrize("sentence", ["Renewing", "we renewed!", "She RENEWS", "renew."])
def test_inflection_of_a_listed_verb(make_taxonomy, sentence):
    m = Matcher(make_taxonomy(en='language = "en"\n[renewal_likelihood]\ngreen = ["renew"]'))
    assert found(m, sentence, "en") == [("renewal_likelihood", "green", False, "renew")]


def test_a_different_word_with_the_same_start_does_not_match(make_taxonomy):
    m = Matcher(make_taxonomy(en='language = "en"\n[renewal_likelihood]\ngreen = ["renew"]'))
    assert found(m, "The renewal date", "en") == []
    assert found(m, "renew", "fr") == []  # no French taxonomy here


def test_plural_matches_singular_expression(make_taxonomy):
    t = make_taxonomy(
        en='language = "en"\n[renewal_likelihood]\nred = ["other vendor"]',
        fr='language = "fr"\n[renewal_likelihood]\nred = ["autre fournisseur"]',
        it='language = "it"\n[renewal_likelihood]\nred = ["altro fornitore"]',
    )
    m = Matcher(t)
    assert [h[3] for h in found(m, "Two other vendors called", "en")] == ["other vendor"]
    assert [h[3] for h in found(m, "Deux autres fournisseurs", "fr")] == ["autre fournisseur"]
    assert [h[3] for h in found(m, "Altri fornitori", "it")] == ["altro fornitore"]


def test_expressions_do_not_match_across_clause_punctuation(make_taxonomy):
    m = Matcher(make_taxonomy(en='language = "en"\n[pricing_perception]\nred = ["too expensive"]'))
    assert found(m, "Too, expensive", "en") == []
    assert len(found(m, "(too expensive)", "en")) == 1


class TestNegation:
    """Nothing is flipped: a negated match is reported gray with negated=True."""

    def test_not_happy_with_a_taxonomy_that_lists_only_happy(self, make_taxonomy):
        m = Matcher(make_taxonomy(en='language = "en"\n[value_realization]\ngreen = ["happy"]'))
        assert found(m, "We are not happy.", "en") == [("value_realization", "gray", True, "happy")]
        assert found(m, "We are not very happy.", "en") == [("value_realization", "gray", True, "happy")]
        assert found(m, "We aren't happy", "en")[0][1:3] == ("gray", True)
        assert found(m, "We are happy.", "en") == [("value_realization", "green", False, "happy")]

    def test_not_happy_with_the_shipped_taxonomy_is_the_listed_red_expression(self, shipped_matcher):
        # The shipped English file lists "not happy" as red: the longer expression wins
        # and, containing its own negation, is taken as written.
        assert found(shipped_matcher, "We are not happy.", "en") == [("value_realization", "red", False, "not happy")]

    @pytest.mark.parametrize(
        "language, sentence, expression",
        [
            ("en", "We are not looking at other vendors.", "looking at other vendors"),
            ("fr", "Nous ne cherchons pas d'autres fournisseurs.", "d'autres fournisseurs"),
            ("it", "Non stiamo valutando altri fornitori.", "valutando altri fornitori"),
        ],
    )
    def test_negated_red_cue_becomes_gray(self, make_taxonomy, language, sentence, expression):
        # a taxonomy that lists only the red cue, not its negated form
        m = Matcher(
            make_taxonomy(**{language: f'language = "{language}"\n[renewal_likelihood]\nred = ["{expression}"]'})
        )
        (match,) = m.match(sentence, language)
        assert (match.expression.text, match.polarity, match.negated) == (expression, "gray", True)
        assert match.listed_polarity == "red"

    @pytest.mark.parametrize(
        "language, sentence, expression",
        [
            ("en", "We are not looking at other vendors.", "not looking at other vendors"),
            ("fr", "Nous ne cherchons pas d'autres fournisseurs.", "ne cherchons pas d'autres fournisseurs"),
            ("it", "Non stiamo valutando altri fornitori.", "non stiamo valutando altri fornitori"),
        ],
    )
    def test_shipped_taxonomy_lists_these_negations_as_green(self, shipped_matcher, language, sentence, expression):
        # the listed negated form is longer than the red cue it contains, so it wins
        assert found(shipped_matcher, sentence, language) == [("renewal_likelihood", "green", False, expression)]

    def test_negated_green_cue_becomes_gray_not_red(self, shipped_matcher):
        assert found(shipped_matcher, "We won't need more seats", "en") == [
            ("upsell_readiness", "gray", True, "need more seats")
        ]
        assert found(shipped_matcher, "Non prevediamo di rinnovare", "it") == [
            ("renewal_likelihood", "gray", True, "prevediamo di rinnovare")
        ]

    def test_listed_negated_expressions_are_taken_as_written(self, shipped_matcher):
        assert found(shipped_matcher, "We don't plan to renew", "en") == [
            ("renewal_likelihood", "red", False, "don't plan to renew")
        ]
        # "ne ... pas": the "n'" before the listed "pas clair" does not negate it again
        assert found(shipped_matcher, "Ce n'est pas clair", "fr") == [("onboarding_clarity", "red", False, "pas clair")]
        assert found(shipped_matcher, "Non vale il prezzo", "it") == [
            ("pricing_perception", "red", False, "non vale il prezzo")
        ]

    def test_cue_beyond_the_window_does_not_negate(self, make_taxonomy):
        m = Matcher(make_taxonomy(en='language = "en"\n[renewal_likelihood]\ngreen = ["plan to renew"]'))
        # three words between "never" and the match: out of reach
        assert found(m, "We never said we would plan to renew", "en")[0][1:3] == ("green", False)
        assert found(m, "We never would plan to renew", "en")[0][1:3] == ("gray", True)

    def test_cue_in_another_clause_does_not_negate(self, make_taxonomy):
        m = Matcher(make_taxonomy(en='language = "en"\n[renewal_likelihood]\ngreen = ["plan to renew"]'))
        assert found(m, "No, we plan to renew.", "en")[0][1:3] == ("green", False)
        assert found(m, "No we plan to renew.", "en")[0][1:3] == ("gray", True)


class TestLongestMatch:
    def test_longer_expression_wins_over_the_one_it_contains(self, shipped_matcher):
        assert found(shipped_matcher, "Issue resolved with a documented workaround", "en") == [
            ("support_friction", "green", False, "issue resolved with a documented workaround")
        ]

    def test_longer_listed_negation_wins_and_keeps_its_polarity(self, make_taxonomy):
        m = Matcher(make_taxonomy(en='language = "en"\n[renewal_likelihood]\ngreen = ["renew"]\nred = ["not renew"]'))
        assert found(m, "We will not renew", "en") == [("renewal_likelihood", "red", False, "not renew")]

    def test_matches_do_not_overlap_and_keep_text_order(self, make_taxonomy):
        m = Matcher(
            make_taxonomy(
                en='language = "en"\n[pricing_perception]\nred = ["too expensive", "expensive"]\n'
                '[upsell_readiness]\ngreen = ["more seats"]'
            )
        )
        assert [h[3] for h in found(m, "Too expensive for more seats, expensive", "en")] == [
            "too expensive",
            "more seats",
            "expensive",
        ]

    def test_one_expression_in_two_buckets_gives_one_match_per_bucket(self, make_taxonomy):
        m = Matcher(
            make_taxonomy(
                en='language = "en"\n[renewal_likelihood]\nred = ["budget cut"]\n'
                '[pricing_perception]\ngray = ["budget cuts"]'
            )
        )
        assert sorted(found(m, "Budget cuts again", "en")) == [
            ("pricing_perception", "gray", False, "budget cuts"),
            ("renewal_likelihood", "red", False, "budget cut"),
        ]
