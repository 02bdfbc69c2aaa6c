using System.Text;

namespace BertSharp.Tokenization;

/// <summary>
/// BERT WordPiece tokenizer that reproduces HuggingFace's slow (pure-python) <c>BertTokenizer</c> exactly:
/// clean text, optional lower-casing and accent stripping, CJK ideographs split, punctuation split, then greedy
/// longest-match-first WordPiece with "##" continuations; the special tokens ([PAD] [UNK] [CLS] [SEP] [MASK])
/// are recognised whole in the raw text, as for a tokenizer loaded with <c>from_pretrained</c>.
/// Thread-safe after construction.
/// </summary>
/// <remarks>
/// Written here rather than taken from Microsoft.ML.Tokenizers, whose BertTokenizer differs from HF's on symbols,
/// tabs and newlines, '_', Hangul and the case of special tokens, and whose offsets refer to normalized text
/// (docs/TOKENIZER.md has the comparison).
/// </remarks>
public sealed partial class BertTokenizer
{
    private readonly string[] _vocab;
    private readonly Dictionary<string, int> _ids;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly bool _lowerCase, _stripAccents, _tokenizeChineseChars;
    private readonly int _maxInputCharsPerWord;
    private readonly int _maxTokenLength, _maxContinuationLength;
    private readonly (string Token, int Id)[] _specialsLongestFirst;
    private readonly int _maxSpecialLength;
    private readonly bool[] _specialStartAscii = new bool[128];
    private readonly HashSet<char>? _specialStartOther;

    public BertTokenizerOptions Options { get; }

    /// <summary>Builds a tokenizer from an in-memory vocabulary (id = index).</summary>
    public BertTokenizer(IReadOnlyList<string> vocab, BertTokenizerOptions? options = null)
        : this(vocab, options ?? new BertTokenizerOptions(), "vocabulary", lineNumbers: null)
    {
    }

    private BertTokenizer(IReadOnlyList<string> vocab, BertTokenizerOptions options, string source, int[]? lineNumbers)
    {
        ArgumentNullException.ThrowIfNull(vocab);
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxInputCharsPerWord < 1)
            throw new ArgumentOutOfRangeException(nameof(options), "MaxInputCharsPerWord must be at least 1.");
        if (vocab.Count == 0) throw new BertSharpException($"{source}: the vocabulary is empty");
        Options = options;
        _vocab = new string[vocab.Count];
        _ids = new Dictionary<string, int>(vocab.Count, StringComparer.Ordinal);
        for (int i = 0; i < vocab.Count; i++)
        {
            string token = vocab[i] ?? throw new BertSharpException($"{Where(source, lineNumbers, i)}: token is null");
            if (token.Contains('\n') || token.Contains('\r'))
                throw new BertSharpException($"{Where(source, lineNumbers, i)}: token contains a line break");
            if (!_ids.TryAdd(token, i))
                throw new BertSharpException(
                    $"{Where(source, lineNumbers, i)}: duplicate token '{token}' (first at {Where(null, lineNumbers, _ids[token])})");
            _vocab[i] = token;
            _maxTokenLength = Math.Max(_maxTokenLength, token.Length);
            if (token.StartsWith("##", StringComparison.Ordinal))
                _maxContinuationLength = Math.Max(_maxContinuationLength, token.Length - 2);
        }
        _lookup = _ids.GetAlternateLookup<ReadOnlySpan<char>>();

        PadId = RequireSpecial(options.PadToken, "pad", source);
        UnkId = RequireSpecial(options.UnkToken, "unk", source);
        ClsId = RequireSpecial(options.ClsToken, "cls", source);
        SepId = RequireSpecial(options.SepToken, "sep", source);
        MaskId = RequireSpecial(options.MaskToken, "mask", source);

        _lowerCase = options.LowerCase;
        _stripAccents = options.EffectiveStripAccents;
        _tokenizeChineseChars = options.TokenizeChineseChars;
        _maxInputCharsPerWord = options.MaxInputCharsPerWord;

        _specialsLongestFirst = new[] { PadId, UnkId, ClsId, SepId, MaskId }
            .Distinct()
            .Select(id => (_vocab[id], id))
            .OrderByDescending(t => t.Item1.Length)
            .ToArray();
        foreach (var (token, _) in _specialsLongestFirst)
        {
            _maxSpecialLength = Math.Max(_maxSpecialLength, token.Length);
            if (token[0] < 128) _specialStartAscii[token[0]] = true;
            else (_specialStartOther ??= new HashSet<char>()).Add(token[0]);
        }
    }

    private static string Where(string? source, int[]? lineNumbers, int index) =>
        lineNumbers is null
            ? (source is null ? $"index {index}" : $"{source}: index {index}")
            : (source is null ? $"line {lineNumbers[index]}" : $"{source}:{lineNumbers[index]}");

    private int RequireSpecial(string token, string name, string source)
    {
        if (string.IsNullOrEmpty(token))
            throw new BertSharpException($"{source}: the {name}_token is empty");
        if (!_ids.TryGetValue(token, out int id))
            throw new BertSharpException(
                $"{source}: the vocabulary has no {token} token (a BERT vocab.txt needs [PAD], [UNK], [CLS], [SEP] and [MASK])");
        return id;
    }

    public int VocabSize => _vocab.Length;
    public int PadId { get; }
    public int UnkId { get; }
    public int ClsId { get; }
    public int SepId { get; }
    public int MaskId { get; }

    /// <summary>Truncation length used when <c>maxLength</c> is not given: model_max_length, else 512.</summary>
    public int DefaultMaxLength => Options.ModelMaxLength ?? 512;

    public IReadOnlyList<string> Vocabulary => _vocab;

    public string IdToToken(int id)
    {
        if ((uint)id >= (uint)_vocab.Length)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"token id must be in [0, {_vocab.Length})");
        return _vocab[id];
    }

    /// <summary>The token's id, or <see cref="UnkId"/> when it is not in the vocabulary.</summary>
    public int TokenToId(string token) => _ids.TryGetValue(token, out int id) ? id : UnkId;

    public bool Contains(string token) => _ids.ContainsKey(token);

    /// <summary>Whether the id is one of [PAD] [UNK] [CLS] [SEP] [MASK].</summary>
    public bool IsSpecialId(int id) => id == PadId || id == UnkId || id == ClsId || id == SepId || id == MaskId;

    /// <summary>HF BasicTokenizer output: the words WordPiece then splits (lower-cased, accent-stripped, punctuation split).</summary>
    public List<string> BasicTokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var words = new List<string>();
        var sink = new WordSink(words);
        Run(text, ref sink);
        return words;
    }

    /// <summary>WordPiece tokens, as HF <c>tokenizer.tokenize(text)</c>.</summary>
    public List<string> Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = new List<string>();
        var sink = new StringSink(tokens, _vocab);
        Run(text, ref sink);
        return tokens;
    }

    /// <summary>Token ids without special tokens and without truncation.</summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 4 + 4);
        EncodeInto(text, ids);
        return ids.ToArray();
    }

    /// <summary>Appends the token ids of <paramref name="text"/> (no special tokens) to <paramref name="ids"/>.</summary>
    public void EncodeInto(ReadOnlySpan<char> text, List<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var sink = new IdSink(ids);
        Run(text, ref sink);
    }

    /// <summary>Counts WordPiece tokens without storing them.</summary>
    public long CountTokens(ReadOnlySpan<char> text)
    {
        var sink = new CountSink();
        Run(text, ref sink);
        return sink.Count;
    }

    /// <summary>
    /// WordPiece tokens with their [Start, End) spans in <paramref name="text"/> (UTF-16 units). A span covers the
    /// original characters the token came from: accented letters, combining marks that were stripped (they join the
    /// preceding token), both halves of a surrogate pair. Deleted characters (controls, zero-width, U+FFFD) and
    /// whitespace belong to no token unless they sit inside one word. [UNK] spans its whole word.
    /// Where normalization turns one character into several (a Hangul syllable into its jamo) and WordPiece
    /// splits inside it, the pieces share that character's span, so neighbouring spans can overlap.
    /// </summary>
    public List<TokenSpan> TokenizeWithOffsets(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var spans = new List<TokenSpan>();
        var sink = new SpanSink(spans, _vocab);
        Run(text, ref sink);
        return spans;
    }

    /// <summary>
    /// HF <c>tokenizer(textA, textB, truncation=True, max_length=maxLength)</c>: <c>[CLS] A [SEP]</c> or
    /// <c>[CLS] A [SEP] B [SEP]</c>, cut to <paramref name="maxLength"/> with the 'longest_first' strategy (remove one
    /// token at a time from the end of the longer sequence; from B on a tie). No padding.
    /// Without special tokens, the ids are A then B and every token type is 0 (as HF).
    /// </summary>
    public BertEncoding Encode(string textA, string? textB, int? maxLength = null, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(textA);
        var a = new List<int>();
        EncodeInto(textA, a);
        List<int>? b = null;
        if (textB is not null)
        {
            b = new List<int>();
            EncodeInto(textB, b);
        }
        return Build(a, b, maxLength, addSpecialTokens);
    }

    /// <summary>Like <see cref="Encode(string, string?, int?, bool)"/> from token ids already computed (e.g. cached).</summary>
    public BertEncoding Build(IReadOnlyList<int> idsA, IReadOnlyList<int>? idsB, int? maxLength = null, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(idsA);
        int max = maxLength ?? DefaultMaxLength;
        int specials = addSpecialTokens ? (idsB is null ? 2 : 3) : 0;
        if (max <= specials)
            throw new ArgumentOutOfRangeException(nameof(maxLength), max, $"maxLength must be larger than the {specials} special tokens");
        int la = idsA.Count, lb = idsB?.Count ?? 0;
        int remove = la + lb + specials - max;
        if (remove > 0)
        {
            if (idsB is null) la -= remove;
            else
            {
                // HF truncate_sequences, LONGEST_FIRST (the closed form of removing one at a time from the longer).
                int first = Math.Min(Math.Abs(lb - la), remove);
                int second = remove - first;
                int fromA, fromB;
                if (la > lb) { fromA = first + second / 2; fromB = second - second / 2; }
                else { fromA = second / 2; fromB = first + second - second / 2; }
                la = Math.Max(0, la - fromA);
                lb = Math.Max(0, lb - fromB);
            }
        }

        int total = la + lb + specials;
        var ids = new int[total];
        var types = new int[total];
        int o = 0;
        if (addSpecialTokens) ids[o++] = ClsId;
        for (int i = 0; i < la; i++) ids[o++] = idsA[i];
        if (addSpecialTokens) ids[o++] = SepId;
        if (idsB is not null)
        {
            int typeB = addSpecialTokens ? 1 : 0;
            for (int i = 0; i < lb; i++) { types[o] = typeB; ids[o++] = idsB[i]; }
            if (addSpecialTokens) { types[o] = typeB; ids[o++] = SepId; }
        }
        return new BertEncoding(ToTokens(ids), ids, types, Ones(total));
    }

    /// <summary>
    /// Encodes pre-split words (token classification): each word is tokenized on its own, as HF does with
    /// <c>is_split_into_words=True</c>; <see cref="BertEncoding.WordIds"/> gives each token's word index (-1 for
    /// [CLS]/[SEP]). Label a word on its first token. A word that yields no token (only control characters)
    /// has no token. Truncated from the end to <paramref name="maxLength"/>.
    /// </summary>
    public BertEncoding EncodeWords(IReadOnlyList<string> words, int? maxLength = null, bool addSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(words);
        int max = maxLength ?? DefaultMaxLength;
        int specials = addSpecialTokens ? 2 : 0;
        if (max <= specials)
            throw new ArgumentOutOfRangeException(nameof(maxLength), max, $"maxLength must be larger than the {specials} special tokens");
        var ids = new List<int>();
        var wordIds = new List<int>();
        if (addSpecialTokens) { ids.Add(ClsId); wordIds.Add(-1); }
        int limit = max - (addSpecialTokens ? 1 : 0);
        for (int w = 0; w < words.Count && ids.Count < limit; w++)
        {
            int before = ids.Count;
            EncodeInto(words[w] ?? throw new ArgumentException($"words[{w}] is null", nameof(words)), ids);
            if (ids.Count > limit) ids.RemoveRange(limit, ids.Count - limit);
            for (int k = before; k < ids.Count; k++) wordIds.Add(w);
        }
        if (addSpecialTokens) { ids.Add(SepId); wordIds.Add(-1); }
        var idArray = ids.ToArray();
        return new BertEncoding(ToTokens(idArray), idArray, new int[idArray.Length], Ones(idArray.Length))
        {
            WordIds = wordIds.ToArray(),
        };
    }

    /// <summary>
    /// HF <c>decode</c>: tokens joined by spaces, "##" continuations glued, then HF's clean_up_tokenization
    /// (no space before . , ! ? and English contractions). Special tokens are skipped unless asked for.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var sb = new StringBuilder();
        foreach (int id in ids)
        {
            if (skipSpecialTokens && IsSpecialId(id)) continue;
            string token = IdToToken(id);
            if (token.StartsWith("##", StringComparison.Ordinal) && sb.Length > 0) sb.Append(token, 2, token.Length - 2);
            else
            {
                if (sb.Length > 0) sb.Append(' ');
                sb.Append(token);
            }
        }
        return sb.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
            .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re")
            .ToString();
    }

    private string[] ToTokens(int[] ids)
    {
        var tokens = new string[ids.Length];
        for (int i = 0; i < ids.Length; i++) tokens[i] = _vocab[ids[i]];
        return tokens;
    }

    private static int[] Ones(int n)
    {
        var a = new int[n];
        Array.Fill(a, 1);
        return a;
    }
}
