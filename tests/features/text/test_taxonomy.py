"""Taxonomy files: the shipped ones, extension files and validation errors."""

from collections import Counter
from pathlib import Path

import pytest

from features.text.taxonomy import (
    BUCKETS,
    LANGUAGES,
    POLARITIES,
    SHIPPED_DIR,
    TaxonomyError,
    load_taxonomy,
    read_taxonomy_file,
)


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


class TestShipped:
    def test_every_language_has_15_to_40_expressions_per_bucket(self, shipped):
        counts = Counter((e.language, e.bucket) for e in shipped.expressions)
        for language in LANGUAGES:
            for bucket in BUCKETS:
                assert 15 <= counts[(language, bucket)] <= 40, (language, bucket)

    def test_every_bucket_has_every_polarity(self, shipped):
        present = {(e.language, e.bucket, e.polarity) for e in shipped.expressions}
        missing = [
            (lang, b, p) for lang in LANGUAGES for b in BUCKETS for p in POLARITIES if (lang, b, p) not in present
        ]
        assert missing == []

    def test_no_expression_is_listed_twice_in_the_files(self, shipped):
        # build_taxonomy drops same-polarity repeats silently; the shipped files have none
        raw = [e for lang in LANGUAGES for e in read_taxonomy_file(SHIPPED_DIR / f"{lang}.toml")]
        assert len(raw) == len(shipped.expressions)

    def test_sources_point_at_the_entry(self, shipped):
        e = next(x for x in shipped.expressions if x.text == "too expensive")
        path = Path(e.source.split(":")[0])
        line = line_of(path, '"too expensive"')
        assert f"{path}:{line} " in e.source
        assert "[pricing_perception] red" in e.source

    def test_languages_can_be_restricted(self):
        assert load_taxonomy(("fr",)).languages == ("fr",)

    def test_unsupported_language_is_refused(self):
        with pytest.raises(TaxonomyError, match="unsupported.*'de'"):
            load_taxonomy(("en", "de"))


class TestValidation:
    def test_unknown_bucket_names_file_line_and_bucket(self, write_toml):
        path = write_toml("en.toml", 'language = "en"\n\n[renewal]\ngreen = ["plan to renew"]\n')
        with pytest.raises(TaxonomyError) as err:
            read_taxonomy_file(path)
        assert f"{path}:3 [renewal]" in str(err.value)
        assert "unknown bucket 'renewal'" in str(err.value)

    def test_unknown_polarity_names_bucket_and_polarity(self, write_toml):
        path = write_toml(
            "en.toml", 'language = "en"\n[pricing_perception]\nred = ["too expensive"]\namber = ["pricey"]\n'
        )
        with pytest.raises(TaxonomyError) as err:
            read_taxonomy_file(path)
        assert f"{path}:4 [pricing_perception] amber" in str(err.value)
        assert "unknown polarity 'amber'" in str(err.value)

    @pytest.mark.parametrize("empty", ['""', '"   "', '"?!"'])
    def test_empty_expression_names_entry_number(self, write_toml, empty):
        path = write_toml("fr.toml", f'language = "fr"\n[pricing_perception]\nred = [\n  "trop cher",\n  {empty},\n]\n')
        with pytest.raises(TaxonomyError) as err:
            read_taxonomy_file(path)
        assert f"{path}:5 [pricing_perception] red #2: empty expression" in str(err.value)

    def test_non_string_expression(self, write_toml):
        path = write_toml("it.toml", 'language = "it"\n[pricing_perception]\nred = ["troppo caro", 3]\n')
        with pytest.raises(TaxonomyError, match=r"red #2: expression must be a string, got 3"):
            read_taxonomy_file(path)

    def test_every_problem_of_a_file_is_reported_at_once(self, write_toml):
        path = write_toml("en.toml", 'language = "en"\n[renewal]\ngreen = ["x"]\n[pricing_perception]\nred = [""]\n')
        with pytest.raises(TaxonomyError) as err:
            read_taxonomy_file(path)
        assert "unknown bucket" in str(err.value) and "empty expression" in str(err.value)

    def test_missing_or_unknown_language(self, write_toml):
        with pytest.raises(TaxonomyError, match="'language' must be one of en, fr, it, got None"):
            read_taxonomy_file(write_toml("a.toml", '[pricing_perception]\nred = ["too expensive"]\n'))
        with pytest.raises(TaxonomyError, match="got 'de'") as err:
            read_taxonomy_file(write_toml("b.toml", 'language = "de"\n[pricing_perception]\nred = ["zu teuer"]\n'))
        assert "empty expression" not in str(err.value)

    def test_invalid_toml_names_the_file(self, write_toml):
        path = write_toml("en.toml", 'language = "en"\n[pricing_perception\n')
        with pytest.raises(TaxonomyError, match=f"{path}: not valid TOML"):
            read_taxonomy_file(path)

    def test_conflicting_duplicate_names_both_entries(self, make_taxonomy):
        body = 'language = "en"\n[pricing_perception]\ngreen = ["Too expensive"]\nred = ["too expensive!"]\n'
        with pytest.raises(TaxonomyError) as err:
            make_taxonomy(en=body)
        message = str(err.value)
        assert "en.toml:4 [pricing_perception] red #1" in message
        assert "en.toml:3 [pricing_perception] green #1" in message

    def test_duplicate_via_inflection_conflicts_too(self, make_taxonomy):
        body = 'language = "en"\n[renewal_likelihood]\nred = ["other vendors"]\ngray = ["other vendor"]\n'
        with pytest.raises(TaxonomyError, match="same bucket, same words"):
            make_taxonomy(en=body)

    def test_same_polarity_repeat_is_kept_once(self, make_taxonomy):
        t = make_taxonomy(en='language = "en"\n[pricing_perception]\nred = ["too expensive", "Too Expensive!"]\n')
        assert [e.text for e in t.expressions] == ["too expensive"]

    def test_same_words_in_two_buckets_are_allowed(self, make_taxonomy):
        t = make_taxonomy(
            en='language = "en"\n[renewal_likelihood]\nred = ["budget cut"]\n'
            '[pricing_perception]\ngreen = ["budget cut"]\n'
        )
        assert len(t.expressions) == 2


class TestExtraFolder:
    def test_extra_files_extend_the_shipped_taxonomy(self, tmp_path):
        (tmp_path / "acme.toml").write_text(
            'language = "en"\n[upsell_readiness]\ngreen = ["sandbox for the data team"]\n'
        )
        base = load_taxonomy(("en",))
        extended = load_taxonomy(("en",), extra_dir=tmp_path)
        assert len(extended.expressions) == len(base.expressions) + 1
        assert "sandbox for the data team" in {e.text for e in extended.expressions}

    def test_extra_files_of_other_languages_are_skipped(self, tmp_path):
        (tmp_path / "acme-fr.toml").write_text('language = "fr"\n[upsell_readiness]\ngreen = ["bac à sable"]\n')
        assert load_taxonomy(("en",), extra_dir=tmp_path).languages == ("en",)

    def test_extra_file_cannot_flip_a_shipped_polarity(self, tmp_path):
        extra = tmp_path / "acme.toml"
        extra.write_text('language = "en"\n[pricing_perception]\ngray = ["too expensive"]\n')
        with pytest.raises(TaxonomyError) as err:
            load_taxonomy(("en",), extra_dir=tmp_path)
        assert f"{extra}:3 [pricing_perception] gray #1" in str(err.value)
        assert "en.toml" in str(err.value)

    def test_missing_folder(self, tmp_path):
        with pytest.raises(TaxonomyError, match="taxonomy folder not found"):
            load_taxonomy(extra_dir=tmp_path / "nope")
