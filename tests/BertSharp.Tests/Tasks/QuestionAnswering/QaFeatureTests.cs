using BertSharp.Tasks.QuestionAnswering;
using BertSharp.Tests.Tokenization;
using BertSharp.Tokenization;

namespace BertSharp.Tests.Tasks.QuestionAnswering;

public class QaFeatureTests
{
    // Words w0..w199 are one token each, so token i is word i.
    static readonly BertTokenizer Words = new(SmallVocab.With(Enumerable.Range(0, 200).Select(i => $"w{i}").Concat(["where", "denver", "team"]).ToArray()));
    static readonly Lazy<BertTokenizer> Tiny = new(() => BertTokenizer.FromFolder(TestPaths.TinyBert));

    static string WordContext(int n) => string.Join(" ", Enumerable.Range(0, n).Select(i => $"w{i}"));

    static SquadExample Answering(string context, string answer, string question = "where", string id = "q")
    {
        int start = context.IndexOf(answer, StringComparison.Ordinal);
        Assert.True(start >= 0);
        return new SquadExample(id, question, context, new[] { new SquadAnswer(answer, start) });
    }

    [Fact]
    public void A_long_context_becomes_overlapping_windows_and_a_straddling_answer_lands_in_the_window_that_holds_it_whole()
    {
        // Question "where" = 1 token; window = 24 − 1 − 3 = 20 context tokens; starts 10 apart: 0, 10, …, 80.
        var settings = new QaSettings { MaxSeqLength = 24, MaxQueryLength = 4, DocStride = 10 };
        var context = WordContext(100);
        var ex = Answering(context, "w18 w19 w20 w21"); // crosses the end of window 0 ([0, 20)) and the start of window 2 ([20, 40))
        var set = new QaFeaturizer(Words, settings).Build(new[] { ex }, withTargets: true);
        var f = set.Features;
        Assert.Equal(9, f.Count);                                   // more than three windows
        Assert.Equal(Enumerable.Range(0, 9).Select(w => w * 10), f.Select(x => x.DocStart));
        Assert.All(f, x => Assert.Equal(20, x.DocLength));
        Assert.All(f, x => Assert.Equal(24, x.Length));

        // [CLS] where [SEP] w10 … w29 [SEP]: types 0 0 0 then 1.
        var w1 = f[1];
        Assert.Equal(3, w1.ContextOffset);
        Assert.Equal(new[] { Words.ClsId, Words.TokenToId("where"), Words.SepId, Words.TokenToId("w10") }, w1.InputIds[..4]);
        Assert.Equal(Words.SepId, w1.InputIds[^1]);
        Assert.Equal(new[] { 0, 0, 0 }, w1.TokenTypeIds[..3]);
        Assert.All(w1.TokenTypeIds[3..], t => Assert.Equal(1, t));

        // Only window 1 ([10, 30)) holds w18..w21 whole; windows 0 and 2 hold part of it and point at [CLS].
        Assert.Equal((0, 0), (f[0].StartPosition, f[0].EndPosition));
        Assert.Equal((3 + 8, 3 + 11), (w1.StartPosition, w1.EndPosition));
        Assert.Equal((0, 0), (f[2].StartPosition, f[2].EndPosition));
        Assert.All(f.Skip(3), x => Assert.Equal(0, x.StartPosition));
        Assert.Equal(0, set.AnswersOutsideWindows);

        // Back from the window's positions to the characters: exactly the answer.
        var tokens = set.Contexts[0].Tokens;
        int from = tokens[w1.ContextToken(w1.StartPosition)].Start, to = tokens[w1.ContextToken(w1.EndPosition)].End;
        Assert.Equal("w18 w19 w20 w21", context[from..to]);
        Assert.Equal(ex.Answers[0].Start, from);

        // Max context: w18 is 18 − 0 = 18 from window 0's start but 1 from its end; window 1 centres it better.
        Assert.False(f[0].IsMaxContext[18]);
        Assert.True(w1.IsMaxContext[8]);
        // Every context token is max-context in exactly one window.
        for (int t = 0; t < 100; t++)
            Assert.Equal(1, f.Count(x => t >= x.DocStart && t < x.DocStart + x.DocLength && x.IsMaxContext[t - x.DocStart]));

        // Decoding logits that favour w18..w21 in window 1 gives the answer text and its character span.
        var logits = f.Select(x => new QaLogits(new float[x.Length], new float[x.Length])).ToList();
        logits[1].Start[w1.StartPosition] = 5;
        logits[1].End[w1.EndPosition] = 5;
        var answer = QaPostProcessing.Decode(set, logits, settings).Single();
        Assert.Equal("w18 w19 w20 w21", answer.Text);
        Assert.Equal((ex.Answers[0].Start, ex.Answers[0].End), (answer.Start!.Value, answer.End!.Value));
    }

    [Fact]
    public void The_last_window_ends_at_the_end_of_the_context()
    {
        var settings = new QaSettings { MaxSeqLength = 24, MaxQueryLength = 4, DocStride = 10 };
        var set = new QaFeaturizer(Words, settings).Build(new[] { Answering(WordContext(45), "w44") }, withTargets: true);
        Assert.Equal([(0, 20), (10, 20), (20, 20), (30, 15)], set.Features.Select(f => (f.DocStart, f.DocLength)));
        Assert.Equal(3 + 15 + 1, set.Features[^1].Length);          // [CLS] where [SEP], 15 context tokens, [SEP]
        Assert.Equal(3 + 14, set.Features[^1].StartPosition);
        // A short context is one window.
        Assert.Single(new QaFeaturizer(Words, settings).Build(new[] { Answering(WordContext(5), "w2") }, true).Features);
    }

    [Theory]
    [InlineData("café—naïve")]
    [InlineData("Zürich")]
    [InlineData("(Zürich)")]
    [InlineData("Héllo,  wörld!")]
    [InlineData("1,234.5 km²")]
    [InlineData("don't")]
    [InlineData("東京")]
    public void Character_offsets_map_answers_to_tokens_exactly(string answer)
    {
        string context = "  Héllo,  wörld!\tThe café—naïve (Zürich) is 1,234.5 km² wide; don't\u00a0stop 東京 \u200bend.";
        var ex = Answering(context, answer);
        var set = new QaFeaturizer(Tiny.Value, QaSettings.ForModel(128)).Build(new[] { ex }, withTargets: true);
        var f = set.Features.Single(x => x.StartPosition > 0);
        var tokens = set.Contexts[0].Tokens;
        var first = tokens[f.ContextToken(f.StartPosition)];
        var last = tokens[f.ContextToken(f.EndPosition)];
        Assert.Equal(answer, context[first.Start..last.End]);
    }

    [Fact]
    public void An_answer_inside_a_word_maps_to_the_tokens_it_touches()
    {
        // "Denver" inside "Denver's": the token "denver" (the apostrophe and s are separate tokens).
        var (a, b) = QaFeaturizer.AnswerTokens(Words.TokenizeWithOffsets("Denver's team"), new SquadAnswer("Denver", 0));
        Assert.Equal((0, 0), (a, b));
        // An answer over whitespace only touches no token.
        Assert.Equal((-1, -1), QaFeaturizer.AnswerTokens(Words.TokenizeWithOffsets("a    b"), new SquadAnswer("  ", 2)));
    }

    [Fact]
    public void Unanswerable_questions_point_at_CLS_in_every_window()
    {
        var settings = new QaSettings { MaxSeqLength = 24, MaxQueryLength = 4, DocStride = 10 };
        var ex = new SquadExample("n", "where", WordContext(50), Array.Empty<SquadAnswer>(), IsImpossible: true);
        var set = new QaFeaturizer(Words, settings).Build(new[] { ex }, withTargets: true);
        Assert.True(set.Features.Count > 3);
        Assert.All(set.Features, f => Assert.Equal((0, 0), (f.StartPosition, f.EndPosition)));
    }

    [Fact]
    public void Long_questions_are_cut_to_max_query_length_and_one_longer_than_max_seq_length_is_an_error()
    {
        var settings = new QaSettings { MaxSeqLength = 24, MaxQueryLength = 4, DocStride = 10 };
        var fz = new QaFeaturizer(Words, settings);
        var cut = fz.Build(new[] { Answering(WordContext(30), "w3", question: "w1 w2 w3 w4 w5 w6") }, true);
        Assert.Equal(1, cut.TruncatedQuestions);
        Assert.Equal(6, cut.Features[0].ContextOffset);               // [CLS] + 4 question tokens + [SEP]
        Assert.Equal(24 - 4 - 3, cut.Features[0].DocLength);

        var longQuestion = string.Join(" ", Enumerable.Repeat("where", 30));
        var overlong = new[] { Answering(WordContext(30), "w3", question: longQuestion, id: "long1") };
        Assert.Equal(1, fz.Build(overlong, true).TruncatedQuestions);      // a dataset's question is cut, as run_squad.py does
        var e = Assert.Throws<BertSharpException>(() => fz.Build(overlong, true, rejectOverlongQuestions: true));
        Assert.StartsWith("question long1: the question is 30 tokens, too long for maxSeqLength 24", e.Message);
        Assert.Contains("maxSeqLength", e.Parameters);
    }

    [Fact]
    public void Empty_contexts_and_impossible_settings_are_errors()
    {
        var fz = new QaFeaturizer(Words, new QaSettings { MaxSeqLength = 24, MaxQueryLength = 4, DocStride = 10 });
        var e = Assert.Throws<BertSharpException>(() => fz.Build(new[] { new SquadExample("e1", "where", "   ", Array.Empty<SquadAnswer>()) }, false));
        Assert.Equal("question e1: the context is empty", e.Message);
        e = Assert.Throws<BertSharpException>(() => fz.Build(new[] { new SquadExample("e2", "where", "\u200b\u0007", Array.Empty<SquadAnswer>()) }, false));
        Assert.Contains("question e2: the context yields no tokens", e.Message);

        Assert.Contains("docStride 17 must be at least 1 and smaller than the context window of 17 tokens",
            Assert.Throws<BertSharpException>(() => new QaSettings { MaxSeqLength = 24, MaxQueryLength = 4, DocStride = 17 }.Validate()).Message);
        Assert.Contains("exceeds the model's max_position_embeddings 64",
            Assert.Throws<BertSharpException>(() => new QaSettings().Validate(64)).Message);
        Assert.Contains("leaves no room for the context",
            Assert.Throws<BertSharpException>(() => new QaSettings { MaxSeqLength = 10, MaxQueryLength = 8, DocStride = 1 }.Validate()).Message);
    }

    [Fact]
    public void Defaults_follow_Google_for_large_models_and_scale_down_for_small_ones()
    {
        Assert.Equal((384, 128, 64), Tuple(QaSettings.ForModel(512)));
        Assert.Equal((64, 20, 21), Tuple(QaSettings.ForModel(64)));     // the seed preset
        Assert.Equal((128, 41, 42), Tuple(QaSettings.ForModel(128)));
        QaSettings.ForModel(64).Validate(64);
        static (int, int, int) Tuple(QaSettings s) => (s.MaxSeqLength, s.DocStride, s.MaxQueryLength);
    }
}
