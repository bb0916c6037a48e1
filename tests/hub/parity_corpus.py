"""A fixed corpus of texts that exercise every corner of BERT-style tokenization."""

from __future__ import annotations

import random

_EDGE_CASES = [
    # Empty and whitespace only.
    "",
    " ",
    "   \n\r\t  ",
    "\u3000",
    "\u00a0\u2003\u2009",
    "\x0b\x0c",
    # Accents, combining marks, case.
    "Café naïve Ångström niño",
    "Crème brûlée at the ÉCOLE, said Zoë",
    "e\u0301 a\u0300 o\u0308 n\u0303 c\u0327",
    "a\u0301\u0327\u0323 stacked marks",
    "Tiếng Việt có dấu",
    "ÀÉÎÕÜ àéîõü ÇçÑñ",
    "HeLLo WoRLD iPhone McDonald's O'Neil",
    "É" * 101,
    "e\u0301" * 60,
    # Full-width and compatibility characters (kept as they are, not NFKC'd).
    "ＡＢＣ１２３",
    "ｈｅｌｌｏ！ｗｏｒｌｄ？",
    "ｶﾀｶﾅ half-width kana",
    "ﬁnance ﬂow ﬀ ﬆ œuvre Æsir",
    "Ⅻ ① ② x² H₂O ℃ \u2126 \u212a \u212b ǅ",
    # German, Turkish, Greek casing.
    "Straße STRASSE ß ẞ",
    "İstanbul DİKKAT ıi Iİ",
    "ΟΔΥΣΣΕΥΣ σοφός Σ ΣΑΣ",
    # CJK, kana, hangul.
    "東京は日本の首都です。",
    "中文测试，你好！世界",
    "ひらがな カタカナ 漢字まじり",
    "안녕하세요 세계 한국어",
    "𠀀𠀁 extension B, 豈 compatibility, 𫠠𫤟𫤠 edge ranges",
    "日本語English混在text",
    # Emoji.
    "👍",
    "great job 👍🏽👍🏿",
    "family 👨\u200d👩\u200d👧\u200d👦 and flag 🏳️\u200d🌈",
    "I ❤️ NY 😀😃😄🥰",
    # Control and format characters.
    "\x01abc\x02",
    "a\x7fb",
    "zero\u200bwidth space",
    "join\u200dme",
    "\ufeffBOM at start",
    "line\u2028separator and paragraph\u2029separator",
    "soft\u00adhyphen",
    "tab\there and\r\nwindows newline",
    "next\x85line",
    "replacement \ufffd character",
    "private \ue000 use \U000f0000 area",
    "tag \U000e0041 characters \U000e007f",
    "bidi \u202ecodes\u202c here",
    # NUL bytes.
    "before\x00after",
    "\x00",
    "[CLS]\x00[SEP]",
    "[CL\x00S] split by a NUL",
    "a\x00\x00b\x00",
    # Literal special tokens.
    "[CLS] hello [SEP]",
    "[cls] lower case is not special",
    "[MASK] fill [MASK]",
    "[UNK] token",
    "[PAD][PAD]",
    "<s> and </s> and <pad> <mask> <unk>",
    "x[SEP]y",
    "[[CLS]]",
    "[CLS][CLS][SEP]",
    "[ CLS ] spaced",
    "<mask>word",
    "word <mask>",
    "Café[SEP]ÉCOLE",
    # Long words: characters, not bytes, count.
    "a" * 100,
    "a" * 101,
    "é" * 99,
    "日本" * 60,
    "x" * 250,
    "ab" * 51 + " short",
    "supercalifragilisticexpialidocious" * 4,
    "Ω" * 100 + " " + "Ω" * 101,
    # URLs, numbers, punctuation.
    "https://www.example.com/path/to?q=1&r=2#frag",
    "mail user.name+tag@example.co.uk now",
    "www.test.org/a_b-c~d",
    "3.14159 1,000,000 -42 1e10 2024-01-01 $100.00 50% 0xFF",
    "!!!???... --- ***",
    "«quoted» “smart quotes” ‘single’ „low“",
    "¿Qué? ¡Hola! #hashtag @mention",
    "C++ & C# | a/b\\c (parens) [brackets] {braces}",
    "… — – · § ¶ ^_^ `tick` ~tilde~",
    "$€£¥₹ ∑∫√∞ ≤≥≠ ±×÷",
    "𝄞 music 𝅘𝅥𝅮 𝅥𝅭",
    # Mixed scripts.
    "مرحبا بالعالم",
    "שלום עולם",
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "Привет мир, ЁЖИК",
    "გამარჯობა Բարեւ வணக்கம் হ্যালো ሰላም",
    "Arabic مرحبا with English and עברית",
]

_NOUNS = (
    "movie story toy star war film actor director plot scene music song album "
    "book author chapter city river mountain garden kitchen window table coffee "
    "computer network model dataset user review rating genre comedy drama thriller "
    "horror romance documentary animation festival ticket screen camera light"
).split()
_VERBS = (
    "loved watched hated recommended enjoyed missed found wrote directed played "
    "watches loves recommends finds plays reads sings builds trains encodes "
    "tokenizes embeds ranks retrieves predicts"
).split()
_ADJECTIVES = (
    "great terrible boring amazing funny sad long short classic modern beautiful "
    "dark bright quiet loud surprising predictable original clever silly"
).split()
_ADVERBS = "really quite very barely truly absolutely never always often".split()
_PUNCTUATION = [".", "!", "?", "...", ",", ";", ":", "!!", "?!"]
_SPICE = "é ñ ü ß 東京 한국 👍 😂 — “ ” ’ \u00a0 \u200b ﬁ İ Σ [SEP] [cls] $ % # @ &".split(" ") + [
    "\t",
    "\n",
]


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_ADVERBS) if rng.random() < 0.3 else ""]
    for _ in range(rng.randint(1, 3)):
        words += [rng.choice(_ADJECTIVES), rng.choice(_NOUNS), rng.choice(_VERBS)]
    words += ["the", rng.choice(_NOUNS), rng.choice(_PUNCTUATION)]
    text = " ".join(word for word in words if word)
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.1:
        text = text.upper()
    if rng.random() < 0.3:
        position = rng.randint(0, len(text))
        text = text[:position] + rng.choice(_SPICE) + text[position:]
    if rng.random() < 0.2:
        text += f" {rng.randint(0, 100000)}"
    return text


def _random_codepoints(rng: random.Random) -> str:
    """Random scalar values, weighted towards the planes where scripts live."""
    chars = []
    for _ in range(rng.randint(1, 40)):
        plane = rng.choice([0, 0, 0, 0, 1, 2, 3, 14, 15])
        codepoint = plane * 0x10000 + rng.randrange(0x10000)
        if 0xD800 <= codepoint < 0xE000:
            codepoint = 0xE9
        chars.append(chr(codepoint))
        if rng.random() < 0.3:
            chars.append(" ")
    return "".join(chars)


def parity_corpus(seed: int = 1234) -> list[str]:
    """Returns the same 536 texts on every call.

    Hand-written edge cases (empty, accents, full-width, CJK, emoji, control
    characters, NUL bytes, literal special tokens, long words, URLs, mixed
    scripts), texts of several hundred words, 400 sentences generated from word
    lists, and 40 strings of random codepoints.
    """
    rng = random.Random(seed)
    long_texts = [" ".join(_sentence(rng) for _ in range(count)) for count in (40, 80, 150)] + [
        "word " * 300,
        "東京" * 200,
        " ".join(_EDGE_CASES[6:40]) * 3,
    ]
    sentences = [_sentence(rng) for _ in range(400)]
    noise = [_random_codepoints(rng) for _ in range(40)]
    return list(_EDGE_CASES) + long_texts + sentences + noise
