using BertSharp.Tasks.QuestionAnswering;
using BertSharp.Tests.Tokenization;
using BertSharp.Tokenization;

namespace BertSharp.Tests.Tasks.QuestionAnswering;

/// <summary>Decoding hand-set logits: the best span over all windows, its limits, the n-best, SQuAD 2.0 null answers.</summary>
public class QaPostProcessingTests
{
    static readonly BertTokenizer Words = new(SmallVocab.With(Enumerable.Range(0, 100).Select(i => $"w{i}").Append("where").ToArray()));
    // Windows of 20 context tokens, 10 apart: [0,20) [10,30) [20,40) [30,45) for a 45-word context.
    static readonly QaSettings Settings = new() { MaxSeqLength = 24, MaxQueryLength = 4, DocStride = 10, NBestSize = 5, MaxAnswerLength = 10 };

    sealed class Setup
    {
        public required QaFeatureSet Set;
        public required List<QaLogits> Logits;
        public required string Context;

        /// <summary>Sets the start logit of context token <paramref name="token"/> in window <paramref name="window"/>.</summary>
        public void Start(int window, int token, float v) => Logits[window].Start[Pos(window, token)] = v;
        public void End(int window, int token, float v) => Logits[window].End[Pos(window, token)] = v;
        public void Null(int window, float start, float end) { Logits[window].Start[0] = start; Logits[window].End[0] = end; }
        int Pos(int window, int token)
        {
            var f = Set.Features[window];
            Assert.InRange(token, f.DocStart, f.DocStart + f.DocLength - 1);
            return f.ContextOffset + token - f.DocStart;
        }
        public QaAnswer Decode(QaSettings s) => QaPostProcessing.Decode(Set, Logits, s).Single();
    }

    static Setup Make(int words = 45, string? context = null)
    {
        context ??= string.Join(" ", Enumerable.Range(0, words).Select(i => $"w{i}"));
        var set = new QaFeaturizer(Words, Settings).Build(new[] { new SquadExample("q", "where", context, Array.Empty<SquadAnswer>()) }, withTargets: false);
        // Every logit starts low, so only the positions a test raises compete.
        var logits = set.Features.Select(f => new QaLogits(Enumerable.Repeat(-10f, f.Length).ToArray(), Enumerable.Repeat(-10f, f.Length).ToArray())).ToList();
        return new Setup { Set = set, Logits = logits, Context = context };
    }

    [Fact]
    public void The_best_span_over_all_windows_wins_and_its_text_is_cut_from_the_context()
    {
        var s = Make();
        Assert.Equal(4, s.Set.Features.Count);
        s.Start(0, 5, 3); s.End(0, 6, 3);          // "w5 w6", 6
        s.Start(3, 40, 4); s.End(3, 41, 4);        // "w40 w41", 8 (last window)
        var a = s.Decode(Settings);
        Assert.Equal("w40 w41", a.Text);
        Assert.Equal(s.Context.IndexOf("w40"), a.Start);
        Assert.Equal(s.Context.IndexOf("w40") + 7, a.End);
        Assert.Equal(8, a.Score, 6);
        Assert.Equal("w40 w41", a.NBest[0].Text);
        Assert.Contains(a.NBest, c => c.Text == "w5 w6");
        Assert.Equal(1, a.NBest.Sum(c => c.Probability), 9);
        Assert.True(a.NBest.Count <= Settings.NBestSize);
        Assert.Null(a.NullScoreDiff);
    }

    [Fact]
    public void Spans_too_long_or_ending_before_their_start_are_skipped()
    {
        var s = Make();
        s.Start(0, 2, 9); s.End(0, 13, 9);         // 12 tokens > max_answer_length 10
        s.End(0, 1, 8);                            // ends before the start
        s.Start(3, 35, 1); s.End(3, 36, 1);        // the best valid span, 2
        var a = s.Decode(Settings);
        Assert.Equal("w35 w36", a.Text);
        Assert.DoesNotContain(a.NBest, c => c.Text.StartsWith("w2 w3 w4 w5 w6 w7 w8 w9 w10 w11"));
        Assert.DoesNotContain(a.NBest, c => c.Text.StartsWith("w1 "));
        // With a longer limit the long span wins.
        Assert.Equal(string.Join(" ", Enumerable.Range(2, 12).Select(i => $"w{i}")), s.Decode(Settings with { MaxAnswerLength = 12 }).Text);
    }

    [Fact]
    public void A_start_counts_only_in_the_window_that_gives_it_the_most_context()
    {
        // w18 is 1 token from the end of window 0 but central in window 1: a start there in window 0 is ignored.
        var s = Make();
        s.Start(0, 18, 9); s.End(0, 19, 9);
        s.Start(0, 3, 0); s.End(0, 3, 0);
        Assert.Equal("w3", s.Decode(Settings).Text);
        s.Start(1, 18, 9); s.End(1, 19, 9);
        Assert.Equal("w18 w19", s.Decode(Settings).Text);
    }

    [Fact]
    public void The_n_best_holds_each_text_once()
    {
        var s = Make(context: "w1 w2 w1 w3");
        s.Start(0, 0, 5); s.Start(0, 2, 5); s.End(0, 0, 5); s.End(0, 2, 5);
        var a = s.Decode(Settings);
        Assert.Equal("w1", a.Text);
        Assert.Equal(0, a.Start);                   // the first of the tied spans
        Assert.Single(a.NBest, c => c.Text == "w1");
        Assert.Equal(a.NBest.Count, a.NBest.Select(c => c.Text).Distinct().Count());
    }

    [Fact]
    public void Version_2_answers_nothing_when_the_null_score_beats_the_best_span_by_the_threshold()
    {
        var s = Make();
        s.Start(1, 15, 1.5f); s.End(1, 16, 1.5f);  // best span "w15 w16", 3
        for (int w = 0; w < 4; w++) s.Null(w, 3, 3);
        s.Null(2, 2, 2);                           // the null score is the smallest over the windows: 4
        var v2 = Settings with { Version2WithNegative = true };

        var a = s.Decode(v2);
        Assert.Equal("", a.Text);
        Assert.True(a.IsNoAnswer);
        Assert.Null(a.Start);
        Assert.Equal(1, a.NullScoreDiff!.Value, 6);  // 4 − 3
        Assert.Equal(4, a.Score, 6);
        Assert.Equal("", a.NBest[0].Text);          // the null answer ranks by its score
        Assert.Equal("w15 w16", a.NBest[1].Text);

        var b = s.Decode(v2 with { NullScoreDiffThreshold = 1.5 });
        Assert.Equal("w15 w16", b.Text);
        Assert.Equal(1, b.NullScoreDiff!.Value, 6);

        // Version 1 never answers nothing.
        Assert.Equal("w15 w16", s.Decode(Settings).Text);
    }

    [Fact]
    public void Version_2_keeps_the_null_answer_in_the_n_best_even_when_it_ranks_low()
    {
        var s = Make();
        for (int w = 0; w < 4; w++) s.Null(w, -20, -20);
        s.Start(0, 2, 1); s.End(0, 3, 1);
        var a = s.Decode(Settings with { Version2WithNegative = true, NBestSize = 2 });
        Assert.Equal("w2 w3", a.Text);
        Assert.Equal("", a.NBest[^1].Text);
        Assert.Equal(-40 - 2, a.NullScoreDiff!.Value, 6);
    }
}
