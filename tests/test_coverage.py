"""Tokenizer coverage on real text of scripts written with and without spaces: a new-script setup (madx_translit,
madx_emb) is recommended only where the numbers say the base tokenizer cannot read the language."""

import pytest
import sentencepiece as spm

from madx.data.coverage import CHARACTER_SPLIT, FAR_ABOVE, character_units, comparable, coverage, new_script_reasons
from madx.data.spm import sentencepiece_pieces, xlmr_tokenizer

TEXT = {  # the same four facts in each language
    "en": ["The sun rises in the east and sets in the west.",
           "Water boils at one hundred degrees Celsius.",
           "Paris is the capital of France.",
           "The Earth goes around the Sun once a year."],
    "zh": ["太阳从东方升起，从西方落下。",
           "水在一百摄氏度时沸腾。",
           "北京是中国的首都。",
           "地球每年绕太阳转一圈。"],
    "ja": ["太陽は東から昇り、西に沈みます。",
           "水は摂氏百度で沸騰します。",
           "東京は日本の首都です。",
           "地球は一年に一回、太陽の周りを回ります。"],
    "th": ["ดวงอาทิตย์ขึ้นทางทิศตะวันออกและตกทางทิศตะวันตก",
           "น้ำเดือดที่อุณหภูมิหนึ่งร้อยองศาเซลเซียส",
           "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย",
           "โลกโคจรรอบดวงอาทิตย์ปีละหนึ่งรอบ"],
    "km": ["ព្រះអាទិត្យរះនៅទិសខាងកើត ហើយលិចនៅទិសខាងលិច។",
           "ទឹកពុះនៅសីតុណ្ហភាពមួយរយអង្សាសេ។",
           "ភ្នំពេញជារាជធានីនៃប្រទេសកម្ពុជា។",
           "ផែនដីវិលជុំវិញព្រះអាទិត្យមួយជុំក្នុងមួយឆ្នាំ។"],
    "my": ["နေသည် အရှေ့ဘက်မှ ထွက်ပြီး အနောက်ဘက်တွင် ဝင်သည်။",
           "ရေသည် စင်တီဂရိတ် တစ်ရာတွင် ဆူပွက်သည်။",
           "နေပြည်တော်သည် မြန်မာနိုင်ငံ၏ မြို့တော်ဖြစ်သည်။",
           "ကမ္ဘာမြေသည် နေကို တစ်နှစ်လျှင် တစ်ပတ် လှည့်ပတ်သည်။"],
}
SPACELESS = ("zh", "ja", "th", "km", "my")
SCRIPTS = {"en": "LATIN", "zh": "CJK", "ja": "CJK", "th": "THAI", "km": "KHMER", "my": "MYANMAR"}
# scripts the tokenizers below never saw: Georgian is written with spaces, Lao without
UNSEEN = {"ka": ["საქართველოს დედაქალაქი თბილისია.", "მზე აღმოსავლეთიდან ამოდის."],
          "lo": ["ວຽງຈັນແມ່ນນະຄອນຫຼວງຂອງປະເທດລາວ", "ແມ່ນ້ຳຂອງໄຫຼຜ່ານປະເທດລາວ"]}
ALL_LINES = [line for lines in TEXT.values() for line in lines]


@pytest.fixture(scope="module")
def base_tokenizer():
    """An XLM-R tokenizer trained on the six languages' text (every character a piece: no byte fallback)."""
    return xlmr_tokenizer(sentencepiece_pieces(ALL_LINES, 600))


class _BytesFallback:
    """A sentencepiece tokenizer over the same text, with byte fallback: an unseen character becomes its UTF-8 bytes."""

    def __init__(self, directory):
        (directory / "text.txt").write_text("\n".join(ALL_LINES) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(directory / "text.txt"), model_prefix=str(directory / "spm"), vocab_size=900,
            model_type="unigram", character_coverage=1.0, byte_fallback=True, hard_vocab_limit=False, num_threads=1, minloglevel=2)
        self.processor = spm.SentencePieceProcessor(model_file=str(directory / "spm.model"))
        self.unk_token_id = self.processor.unk_id()

    def __call__(self, line, add_special_tokens=False):
        return {"input_ids": self.processor.encode(line)}


@pytest.fixture(scope="module")
def bytes_tokenizer(tmp_path_factory):
    return _BytesFallback(tmp_path_factory.mktemp("spm"))


def test_units_of_a_line_per_script():
    assert character_units("The sun rises.") == 3  # no space-less script: words
    assert character_units("我用iPhone拍照。") == 5  # 我 用 iPhone 拍 照; punctuation is no unit
    assert character_units("東京は2024年に") == 6  # 東 京 は 2024 年 に
    assert character_units("ที่ ภาษาไทย") == 3 + 7  # Thai vowels and tone marks count as characters


@pytest.mark.parametrize("tokenizer", ["base_tokenizer", "bytes_tokenizer"])
def test_a_tokenizer_that_knows_the_scripts_recommends_nothing(tokenizer, request):
    """zh, ja, th, km, my: a space-separated "word" is a clause there, so sub-words per word were 2-10 times the
    source's (the old rule recommended madx_translit / madx_emb for all five at 0% unknown tokens); per character
    they are about one, where a tokenizer that has the characters stays."""
    tokenizer = request.getfixturevalue(tokenizer)
    stats = {lang: coverage(tokenizer, lines) for lang, lines in TEXT.items()}
    source = stats["en"]
    assert source["unit"] == "word" and source["sample_words"] == sum(len(line.split()) for line in TEXT["en"])
    for lang in SPACELESS:
        s = stats[lang]
        assert (s["script"], s["unit"]) == (SCRIPTS[lang], "character"), (lang, s)
        assert s["unk_rate"] < 0.03, (lang, s)
        assert 0.5 < s["subwords_per_word"] <= 1.2, (lang, s)  # about one per character, bytes would be 3
        per_space_word = sum(len(tokenizer(line)["input_ids"]) for line in TEXT[lang]) / sum(
            len(line.split()) for line in TEXT[lang])
        assert per_space_word > FAR_ABOVE * source["subwords_per_word"], lang  # what the old rule measured
        assert not comparable(s, source)
        assert new_script_reasons(s, source) == [], lang
        assert new_script_reasons(s, source, sorted(set(SCRIPTS.values()))) == [], lang
    assert stats["ja"]["scripts"]["HIRAGANA"] > 0.3  # Japanese text: Han and kana, counted both


def test_unknown_scripts_still_get_a_new_script_setup(base_tokenizer, bytes_tokenizer):
    source = coverage(base_tokenizer, TEXT["en"])
    for lang, lines in UNSEEN.items():  # every piece of their text is <unk>
        stats = coverage(base_tokenizer, lines)
        assert stats["unk_rate"] > 0.4, (lang, stats)
        assert new_script_reasons(stats, source)[0].endswith("% unknown tokens (source: 0.0%)")
    # byte fallback: no unknown tokens, but the unseen characters fall apart into their bytes
    source = coverage(bytes_tokenizer, TEXT["en"])
    lao = coverage(bytes_tokenizer, UNSEEN["lo"])
    assert lao["unk_rate"] == 0 and lao["unit"] == "character" and lao["subwords_per_word"] > 2 * CHARACTER_SPLIT
    assert new_script_reasons(lao) == [f"{lao['subwords_per_word']:.2f} sub-words per character (a vocabulary that "
                                       "has the script's characters needs at most 1: it splits them into bytes)"]
    georgian = coverage(bytes_tokenizer, UNSEEN["ka"])
    assert georgian["unit"] == "word" and georgian["unk_rate"] == 0
    assert new_script_reasons(georgian, source) == [
        f"{georgian['subwords_per_word']:.2f} sub-words per word (source: {source['subwords_per_word']:.2f})"]
    assert new_script_reasons(georgian) == []  # without the source nothing compares: no guess


def test_a_script_the_base_was_not_trained_on_gets_a_new_script_setup(base_tokenizer):
    thai = coverage(base_tokenizer, TEXT["th"])
    assert new_script_reasons(thai, coverage(base_tokenizer, TEXT["en"]), ["CJK", "LATIN"]) == [
        "thai script, which the base model was not trained on (cjk, latin)"]


def test_characters_compare_only_within_one_script():
    zh = {"unk_rate": 0.0, "subwords_per_word": 0.5, "unit": "character", "script": "CJK"}
    thai = {"unk_rate": 0.0, "subwords_per_word": 0.2, "unit": "character", "script": "THAI"}
    dialect = {**zh, "subwords_per_word": 1.2}  # the same script, 2.4 times the source's pieces per character
    assert new_script_reasons(dialect, zh) == ["1.20 sub-words per character (source: 0.50)"]
    assert not comparable(zh, thai) and new_script_reasons(zh, thai) == []  # a Han character carries more
    old_record = {"unk_rate": 0.0, "subwords_per_word": 3.1, "script": "LATIN"}  # written before "unit": words
    assert new_script_reasons(old_record, {**old_record, "subwords_per_word": 1.4}) == [
        "3.10 sub-words per word (source: 1.40)"]
