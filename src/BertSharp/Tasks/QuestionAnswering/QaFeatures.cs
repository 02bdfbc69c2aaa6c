using BertSharp.Tokenization;

namespace BertSharp.Tasks.QuestionAnswering;

/// <summary>
/// One window of one question: <c>[CLS] question [SEP] context tokens [DocStart, DocStart+DocLength) [SEP]</c>.
/// Sequence position <c>ContextOffset + k</c> holds context token <c>DocStart + k</c>. The training targets
/// point at the answer's first and last token when the whole answer lies in the window, else at [CLS] (0).
/// </summary>
public sealed class QaFeature
{
    public required int ExampleIndex { get; init; }
    public required int WindowIndex { get; init; }
    public required int[] InputIds { get; init; }
    public required int[] TokenTypeIds { get; init; }
    /// <summary>Sequence position of the window's first context token (question length + 2).</summary>
    public required int ContextOffset { get; init; }
    /// <summary>Index of the window's first token among the context's tokens.</summary>
    public required int DocStart { get; init; }
    public required int DocLength { get; init; }
    /// <summary>Per context token of the window: whether this window gives it the most context on both sides of all
    /// windows holding it (Google's _check_is_max_context). Only such tokens may start an answer.</summary>
    public required bool[] IsMaxContext { get; init; }
    public int StartPosition { get; init; }
    public int EndPosition { get; init; }
    public int Length => InputIds.Length;

    /// <summary>The context token at sequence position <paramref name="position"/>, or -1 outside the context.</summary>
    public int ContextToken(int position) =>
        position >= ContextOffset && position < ContextOffset + DocLength ? DocStart + position - ContextOffset : -1;
}

/// <summary>A question's context, tokenized once: WordPiece tokens with their exact character spans.</summary>
public sealed record QaContext(string Text, IReadOnlyList<TokenSpan> Tokens);

/// <summary>The windows of a list of questions, with each question's tokenized context.</summary>
public sealed class QaFeatureSet
{
    public required IReadOnlyList<SquadExample> Examples { get; init; }
    public required IReadOnlyList<QaContext> Contexts { get; init; }
    public required IReadOnlyList<QaFeature> Features { get; init; }
    /// <summary>Questions cut to --max-query-length tokens.</summary>
    public int TruncatedQuestions { get; init; }
    /// <summary>Training questions whose answer lies in no window in whole (every window of them points at [CLS]).</summary>
    public int AnswersOutsideWindows { get; init; }
}

/// <summary>
/// Turns questions and contexts into model windows, as Google BERT's run_squad.py does, but from exact character
/// offsets: the context is WordPiece-tokenized once with each token's span in the original text, so a gold answer
/// (character range) maps to the tokens its characters touch, and a predicted token range maps back to an exact
/// substring of the context, whatever accents, whitespace or punctuation surround it.
/// </summary>
public sealed class QaFeaturizer
{
    private readonly BertTokenizer tokenizer;

    public QaFeaturizer(BertTokenizer tokenizer, QaSettings settings)
    {
        this.tokenizer = tokenizer;
        Settings = settings;
        settings.Validate();
    }

    public QaSettings Settings { get; }

    /// <summary>Context tokens per window: max_seq_length − question tokens − 3 ([CLS] and two [SEP]).</summary>
    public int WindowFor(int queryTokens) => Settings.MaxSeqLength - queryTokens - 3;

    /// <summary>
    /// Builds the windows of every question. With <paramref name="withTargets"/>, each window carries the training
    /// target of the question's first answer (none for an unanswerable question: [CLS]). Questions longer than
    /// max_query_length are cut to it, as Google's run_squad.py does; with <paramref name="rejectOverlongQuestions"/>
    /// (questions typed by a user), one that does not even fit max_seq_length is an error instead, as it is more
    /// likely a context passed as the question than a question.
    /// </summary>
    public QaFeatureSet Build(IReadOnlyList<SquadExample> examples, bool withTargets, bool rejectOverlongQuestions = false)
    {
        var contexts = new QaContext[examples.Count];
        // Questions of one paragraph share the context string: tokenize each distinct context once.
        var cache = new Dictionary<string, QaContext>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < examples.Count; i++)
        {
            var text = examples[i].Context;
            if (!cache.TryGetValue(text, out var ctx))
            {
                if (string.IsNullOrWhiteSpace(text)) throw new BertSharpException($"question {examples[i].Id}: the context is empty");
                ctx = new QaContext(text, tokenizer.TokenizeWithOffsets(text));
                if (ctx.Tokens.Count == 0) throw new BertSharpException($"question {examples[i].Id}: the context yields no tokens (only control or zero-width characters?)");
                cache[text] = ctx;
            }
            contexts[i] = ctx;
        }
        var perExample = new List<QaFeature>[examples.Count];
        int truncated = 0, outside = 0;
        try
        {
            Parallel.For(0, examples.Count, i =>
            {
                var (features, cut, answerOutside) = Windows(examples[i], i, contexts[i], withTargets, rejectOverlongQuestions);
                perExample[i] = features;
                if (cut) Interlocked.Increment(ref truncated);
                if (answerOutside) Interlocked.Increment(ref outside);
            });
        }
        catch (AggregateException e) when (e.InnerExceptions.OfType<BertSharpException>().Any())
        {
            // Report the first question in data order, whichever thread met it first.
            throw e.InnerExceptions.OfType<BertSharpException>().First();
        }
        return new QaFeatureSet
        {
            Examples = examples,
            Contexts = contexts,
            Features = perExample.SelectMany(f => f).ToList(),
            TruncatedQuestions = truncated,
            AnswersOutsideWindows = outside,
        };
    }

    /// <summary>The windows of one question (<paramref name="exampleIndex"/> is recorded in each).</summary>
    public (List<QaFeature> Features, bool QuestionTruncated, bool AnswerOutsideWindows) Windows(SquadExample ex, int exampleIndex,
        QaContext context, bool withTargets, bool rejectOverlongQuestions = false)
    {
        var s = Settings;
        var query = tokenizer.Encode(ex.Question);
        if (query.Length == 0) throw new BertSharpException($"question {ex.Id}: the question yields no tokens");
        if (rejectOverlongQuestions && query.Length + 3 > s.MaxSeqLength)
            throw new BertSharpException($"question {ex.Id}: the question is {query.Length} tokens, too long for maxSeqLength {s.MaxSeqLength} with [CLS], [SEP] and its context (questions longer than maxQueryLength {s.MaxQueryLength} are cut to {s.MaxQueryLength} tokens; is the context in the question field?)") { Parameters = ["maxSeqLength", "maxQueryLength"] };
        bool truncated = query.Length > s.MaxQueryLength;
        if (truncated) query = query[..s.MaxQueryLength];

        int docTokens = context.Tokens.Count;
        int window = WindowFor(query.Length);
        // Google's doc spans: windows of up to `window` tokens whose starts are doc_stride apart; the last one ends
        // at the end of the context.
        var spans = new List<(int Start, int Length)>();
        for (int start = 0; ; start += Math.Min(window, s.DocStride))
        {
            int length = Math.Min(window, docTokens - start);
            spans.Add((start, length));
            if (start + length >= docTokens) break;
        }

        int tokStart = -1, tokEnd = -1;
        if (withTargets && ex.Answers.Count > 0)
        {
            (tokStart, tokEnd) = AnswerTokens(context.Tokens, ex.Answers[0]);
            if (tokStart < 0)
                throw new BertSharpException($"question {ex.Id}: the answer {ex.Answers[0].Text} at character {ex.Answers[0].Start} covers no token of the context");
        }

        var features = new List<QaFeature>(spans.Count);
        bool anyHolds = false;
        for (int w = 0; w < spans.Count; w++)
        {
            var (docStart, docLength) = spans[w];
            int offset = query.Length + 2, total = offset + docLength + 1;
            var ids = new int[total];
            var types = new int[total];
            ids[0] = tokenizer.ClsId;
            query.CopyTo(ids, 1);
            ids[query.Length + 1] = tokenizer.SepId;
            for (int k = 0; k < docLength; k++) { ids[offset + k] = context.Tokens[docStart + k].Id; types[offset + k] = 1; }
            ids[total - 1] = tokenizer.SepId;
            types[total - 1] = 1;
            var maxContext = new bool[docLength];
            for (int k = 0; k < docLength; k++) maxContext[k] = IsMaxContext(spans, w, docStart + k);

            int startPos = 0, endPos = 0;
            if (tokStart >= 0 && tokStart >= docStart && tokEnd < docStart + docLength)
            {
                startPos = tokStart - docStart + offset;
                endPos = tokEnd - docStart + offset;
                anyHolds = true;
            }
            features.Add(new QaFeature
            {
                ExampleIndex = exampleIndex, WindowIndex = w, InputIds = ids, TokenTypeIds = types,
                ContextOffset = offset, DocStart = docStart, DocLength = docLength, IsMaxContext = maxContext,
                StartPosition = startPos, EndPosition = endPos,
            });
        }
        return (features, truncated, tokStart >= 0 && !anyHolds);
    }

    /// <summary>
    /// The first and last context tokens an answer's characters touch: the first token ending after the answer's
    /// start, the last token starting before its end. (-1, -1) when no token overlaps it.
    /// </summary>
    public static (int First, int Last) AnswerTokens(IReadOnlyList<TokenSpan> tokens, SquadAnswer answer)
    {
        int first = -1, last = -1;
        for (int i = 0; i < tokens.Count; i++)
        {
            if (tokens[i].End <= answer.Start) continue;
            if (tokens[i].Start >= answer.End) break;
            if (first < 0) first = i;
            last = i;
        }
        return (first, last);
    }

    /// <summary>Google's _check_is_max_context: of the windows holding <paramref name="position"/>, the one where
    /// min(left context, right context) + 0.01·window length is largest (the first on a tie).</summary>
    static bool IsMaxContext(List<(int Start, int Length)> spans, int current, int position)
    {
        double best = double.NegativeInfinity;
        int bestIndex = -1;
        for (int i = 0; i < spans.Count; i++)
        {
            var (start, length) = spans[i];
            int end = start + length - 1;
            if (position < start || position > end) continue;
            double score = Math.Min(position - start, end - position) + 0.01 * length;
            if (score > best) { best = score; bestIndex = i; }
        }
        return bestIndex == current;
    }
}
