/*
 * stopwords.c: one stopword list per analyzer language.
 *
 * "english" and "porter" use exactly Lucene's EnglishAnalyzer default set
 * (ENGLISH_STOP_WORDS_SET, 33 words), so BM25 scores are comparable with
 * Lucene and Elasticsearch on English collections.
 *
 * The other lists are deliberately short: the 20-60 most frequent function
 * words of each language (articles, pronouns, prepositions, conjunctions,
 * forms of "be" and "have"), written for this project rather than copied
 * from Snowball's longer lists.  Short lists drop the words that carry no
 * meaning and make up a large share of the postings, without the risk that
 * a long list removes a content word a user searches for.
 *
 * Every word is stored in the form the analyzer produces before stemming:
 * NFKC, Unicode case folding (so German "daß" is "dass", Greek final sigma
 * "ς" is "σ"), and split at apostrophes.  That last point is why French,
 * Italian and Catalan lists hold the elided articles and pronouns as bare
 * letters ("l", "d", "qu", "dell"): "l'homme" is analyzed as "l" + "homme".
 * test_analyzer.c checks that each word is a fixed point of the analyzer.
 *
 * Known limits: Romanian text is written with both comma-below (ș ț) and
 * cedilla (ş ţ) letters, and NFKC does not unify them, so the words that
 * contain them are listed in both spellings.  Turkish dotted capital "İ"
 * case-folds to "i" + U+0307 under the language-neutral folding used here,
 * so an all-capitals Turkish stopword is not recognised.
 *
 * Languages with no list, on purpose: arabic (needs alef/hamza and
 * diacritic normalisation first for a list to match), armenian, basque,
 * hindi, irish (initial mutations: "an", "na", "h-", "t-" interact with
 * tokenization), lithuanian, nepali, serbian (written in Cyrillic and Latin
 * script), tamil and yiddish: we are not confident enough of a frequency
 * ranking in those languages to write one, and a wrong stopword silently
 * hides documents.  They still get stemming.
 */
#include "text/stopwords.h"

#include <string.h>

static const char *const english[] = {
    "a",   "an",    "and",  "are",   "as",    "at",   "be",   "but", "by",  "for",  "if",
    "in",  "into",  "is",   "it",    "no",    "not",  "of",   "on",  "or",  "such", "that",
    "the", "their", "then", "there", "these", "they", "this", "to",  "was", "will", "with",
};

static const char *const catalan[] = {
    "a",   "al",   "als",  "amb",   "aquest", "aquesta", "com",   "d",   "de",   "del", "dels",
    "el",  "ell",  "ella", "els",   "en",     "ens",     "entre", "era", "es",   "és",  "fins",
    "ha",  "hi",   "ho",   "i",     "ja",     "jo",      "l",     "la",  "les",  "li",  "m",
    "més", "n",    "no",   "o",     "per",    "perquè",  "però",  "que", "quan", "s",   "se",
    "seu", "seva", "si",   "sobre", "són",    "t",       "també", "un",  "una",  "us",  "va",
};

static const char *const danish[] = {
    "af",   "alle",  "at",    "blev",  "da",    "de",   "dem",  "den",  "denne", "der",
    "det",  "dette", "du",    "efter", "eller", "en",   "er",   "et",   "for",   "fra",
    "han",  "hans",  "har",   "havde", "hun",   "hvad", "hvis", "hvor", "i",     "ikke",
    "jeg",  "kan",   "kunne", "med",   "men",   "mig",  "min",  "nu",   "når",   "og",
    "også", "om",    "op",    "os",    "over",  "på",   "sig",  "sin",  "skal",  "som",
    "til",  "ud",    "var",   "vi",    "vil",   "være",
};

static const char *const dutch[] = {
    "aan",   "al",  "als",  "bij",  "dan",   "dat",  "de",     "deze",  "die",  "dit",
    "door",  "een", "en",   "er",   "had",   "heb",  "hebben", "heeft", "hem",  "het",
    "hij",   "hoe", "hun",  "ik",   "in",    "is",   "je",     "kan",   "maar", "me",
    "meer",  "met", "mij",  "mijn", "na",    "naar", "niet",   "nog",   "of",   "om",
    "omdat", "ook", "op",   "over", "te",    "tot",  "u",      "uit",   "van",  "voor",
    "was",   "wat", "werd", "wie",  "wordt", "ze",   "zich",   "zij",   "zijn", "zo",
};

static const char *const finnish[] = {
    "ei",   "eikä", "he",   "hän",    "ja",     "jos",   "joka", "jotka", "koska", "kuin",
    "kuka", "kun",  "me",   "mikä",   "minä",   "mutta", "myös", "ne",    "niin",  "nämä",
    "oli",  "olen", "olet", "olemme", "olette", "olisi", "olla", "on",    "ole",   "ovat",
    "se",   "sekä", "sinä", "tai",    "te",     "tuo",   "tämä", "vaan",  "että",
};

static const char *const french[] = {
    "au",    "aux", "avec", "c",     "ce",    "ces",  "dans", "de",   "des", "du",   "elle",
    "elles", "en",  "est",  "et",    "eux",   "il",   "ils",  "j",    "je",  "l",    "la",
    "le",    "les", "leur", "leurs", "lui",   "m",    "ma",   "mais", "me",  "mes",  "moi",
    "mon",   "n",   "ne",   "nos",   "notre", "nous", "on",   "ou",   "où",  "par",  "pas",
    "pour",  "qu",  "que",  "qui",   "s",     "sa",   "se",   "ses",  "son", "sont", "sur",
    "t",     "te",  "tu",   "un",    "une",   "vous", "y",    "à",    "été", "être",
};

static const char *const german[] = {
    "aber", "als",   "am",    "an",    "auch",  "auf", "aus",  "bei",   "bin",  "bis",
    "da",   "das",   "dass",  "dem",   "den",   "der", "des",  "die",   "du",   "ein",
    "eine", "einem", "einen", "einer", "eines", "er",  "es",   "für",   "hat",  "hatte",
    "ich",  "ihr",   "im",    "in",    "ist",   "mit", "nach", "nicht", "noch", "nur",
    "oder", "sich",  "sie",   "sind",  "so",    "um",  "und",  "uns",   "von",  "vor",
    "war",  "wie",   "wir",   "wird",  "zu",    "zum", "zur",  "über",
};

static const char *const greek[] = {
    "αλλά", "από",  "αυτά", "αυτή", "αυτό", "αυτόσ", "για",  "δεν",  "είναι", "ένα",
    "ένασ", "ενώ",  "έχει", "ή",    "η",    "ήταν",  "θα",   "και",  "κατά",  "κι",
    "με",   "μετά", "μη",   "μην",  "μια",  "να",    "ο",    "οι",   "όπωσ",  "που",
    "προσ", "πωσ",  "σε",   "στα",  "στη",  "στην",  "στισ", "στο",  "στον",  "στουσ",
    "τα",   "την",  "τησ",  "τισ",  "το",   "τον",   "του",  "τουσ", "των",   "ωσ",
};

static const char *const hungarian[] = {
    "a",    "aki",     "ami",  "amely", "az",   "azt",    "be",   "csak",   "de",  "egy",
    "el",   "ez",      "ezt",  "fel",   "ha",   "hogy",   "is",   "kell",   "ki",  "le",
    "lesz", "lett",    "majd", "meg",   "mert", "mint",   "már",  "még",    "nem", "pedig",
    "sem",  "szerint", "után", "van",   "vagy", "vannak", "volt", "voltak", "és",  "így",
};

static const char *const indonesian[] = {
    "ada",    "adalah", "agar",     "akan",   "anda",    "antara", "atau",    "bahwa",
    "bisa",   "dalam",  "dan",      "dapat",  "dari",    "dengan", "di",      "dia",
    "harus",  "hanya",  "ia",       "ini",    "itu",     "jika",   "juga",    "kami",
    "karena", "ke",     "kita",     "lebih",  "maka",    "mereka", "namun",   "oleh",
    "pada",   "para",   "saat",     "saya",   "sebagai", "secara", "seperti", "setelah",
    "sudah",  "telah",  "tersebut", "tetapi", "tidak",   "untuk",  "yang",
};

static const char *const italian[] = {
    "a",   "ad",    "agli",  "ai",    "al",    "all", "alla", "alle", "anche", "c",     "che",
    "chi", "ci",    "come",  "con",   "cui",   "d",   "da",   "dal",  "dall",  "dalla", "degli",
    "dei", "del",   "dell",  "della", "delle", "di",  "e",    "è",    "gli",   "ha",    "hanno",
    "i",   "il",    "in",    "l",     "la",    "le",  "lo",   "ma",   "ne",    "negli", "nei",
    "nel", "nell",  "nella", "non",   "o",     "per", "più",  "se",   "si",    "sono",  "su",
    "sul", "sulla", "tra",   "un",    "una",   "uno",
};

static const char *const norwegian[] = {
    "alle",  "at",  "av",    "bare", "ble",  "da",  "de",    "dem", "den", "denne", "der",  "det",
    "dette", "du",  "eller", "en",   "er",   "et",  "etter", "for", "fra", "han",   "hans", "har",
    "hadde", "hun", "hva",   "hvis", "hvor", "i",   "ikke",  "jeg", "kan", "kunne", "man",  "med",
    "meg",   "men", "mot",   "nå",   "når",  "og",  "også",  "om",  "opp", "oss",   "over", "på",
    "seg",   "sin", "skal",  "som",  "så",   "til", "ut",    "var", "ved", "vi",    "vil",  "å",
};

static const char *const portuguese[] = {
    "a",      "ao",     "aos", "as",  "até",  "com",  "como", "da",    "das",  "de",   "dele",
    "do",     "dos",    "e",   "ela", "ele",  "eles", "em",   "entre", "era",  "essa", "esse",
    "esta",   "este",   "eu",  "foi", "isso", "já",   "lhe",  "mais",  "mas",  "me",   "muito",
    "na",     "nas",    "no",  "nos", "não",  "o",    "os",   "ou",    "para", "pela", "pelo",
    "por",    "quando", "que", "se",  "sem",  "ser",  "seu",  "seus",  "sua",  "suas", "são",
    "também", "tem",    "um",  "uma", "à",    "é",
};

static const char *const romanian[] = {
    "a",   "acest", "această", "aceasta", "acesta", "ai", "al",   "ale",  "au",     "ca",   "care",
    "ce",  "cea",   "cei",     "cel",     "cu",     "că", "dar",  "de",   "despre", "din",  "după",
    "ea",  "ei",    "el",      "este",    "eu",     "fi", "fost", "fără", "iar",    "în",   "între",
    "la",  "le",    "lor",     "lui",     "mai",    "nu", "o",    "pe",   "pentru", "prin", "până",
    "sau", "se",    "sunt",    "să",      "un",     "și", "şi",
};

static const char *const russian[] = {
    "а",     "без", "бы",     "был", "была",  "были", "было",  "быть", "в",    "вы", "да",  "для",
    "до",    "его", "ее",     "её",  "если",  "есть", "еще",   "ещё",  "же",   "за", "и",   "из",
    "или",   "их",  "к",      "как", "когда", "кто",  "ли",    "мы",   "на",   "не", "нет", "но",
    "о",     "об",  "он",     "она", "они",   "оно",  "от",    "по",   "при",  "с",  "со",  "так",
    "также", "то",  "только", "у",   "уже",   "что",  "чтобы", "это",  "этот", "я",
};

static const char *const spanish[] = {
    "a",   "al",    "como", "con",   "de",   "del",  "e",    "el",     "ella",    "ellos",
    "en",  "entre", "era",  "es",    "esta", "este", "está", "fue",    "ha",      "hay",
    "la",  "las",   "le",   "les",   "lo",   "los",  "me",   "mi",     "muy",     "más",
    "ni",  "no",    "nos",  "o",     "para", "pero", "por",  "porque", "que",     "se",
    "ser", "si",    "sin",  "sobre", "son",  "su",   "sus",  "sí",     "también", "te",
    "tu",  "un",    "una",  "y",     "ya",   "yo",   "él",
};

static const char *const swedish[] = {
    "av",  "de",  "dem",  "den",  "denna", "det", "detta",  "du",  "där", "efter", "eller",
    "en",  "ett", "från", "för",  "hade",  "han", "hans",   "har", "hon", "i",     "inte",
    "jag", "kan", "man",  "med",  "men",   "mig", "min",    "mot", "ni",  "nu",    "när",
    "och", "om",  "oss",  "på",   "sig",   "sin", "skulle", "som", "så",  "till",  "under",
    "upp", "ut",  "var",  "vara", "vi",    "vid", "är",     "att",
};

static const char *const turkish[] = {
    "ama",   "ancak", "bana",  "bazı", "belki", "ben",  "beni",  "benim", "bile", "bir",
    "biz",   "bu",    "buna",  "bunu", "bunun", "çok",  "çünkü", "da",    "daha", "de",
    "değil", "diye",  "eğer",  "en",   "gibi",  "göre", "hem",   "her",   "hiç",  "için",
    "ile",   "ise",   "kadar", "ki",   "mi",    "mı",   "mu",    "mü",    "ne",   "o",
    "ona",   "onu",   "onun",  "sen",  "siz",   "şu",   "ve",    "veya",  "ya",   "yani",
};

#define LIST(name) name, sizeof(name) / sizeof(name[0])

static const struct {
  const char *language;
  const char *const *words;
  size_t n;
} lists[] = {
    {"catalan", LIST(catalan)},     {"danish", LIST(danish)},
    {"dutch", LIST(dutch)},         {"english", LIST(english)},
    {"finnish", LIST(finnish)},     {"french", LIST(french)},
    {"german", LIST(german)},       {"greek", LIST(greek)},
    {"hungarian", LIST(hungarian)}, {"indonesian", LIST(indonesian)},
    {"italian", LIST(italian)},     {"norwegian", LIST(norwegian)},
    {"porter", LIST(english)},      {"portuguese", LIST(portuguese)},
    {"romanian", LIST(romanian)},   {"russian", LIST(russian)},
    {"spanish", LIST(spanish)},     {"swedish", LIST(swedish)},
    {"turkish", LIST(turkish)},
};

const char *const *vs__stopwords(const char *language, size_t *n) {
  for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
    if (strcmp(lists[i].language, language) == 0) {
      *n = lists[i].n;
      return lists[i].words;
    }
  *n = 0;
  return NULL;
}
