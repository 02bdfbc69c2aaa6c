using System.Text.Json;
using BertSharp.Tasks.QuestionAnswering;

namespace BertSharp.Tests.Tasks.QuestionAnswering;

/// <summary>The official SQuAD scores, on examples computed by hand and on pairs scored by the official scripts'
/// own Python functions (fixtures/squad/scoring_cases.json, from make_scoring_cases.py).</summary>
public class SquadScoringTests
{
    static SquadExample Q(string id, params string[] answers) =>
        new(id, "q?", "context", answers.Select(a => new SquadAnswer(a, 0)).ToList());

    static SquadExample Unanswerable(string id) => new(id, "q?", "context", Array.Empty<SquadAnswer>(), IsImpossible: true);

    [Theory]
    [InlineData("The Denver Broncos!", "denver broncos")]
    [InlineData("  an   apple, a day  ", "apple day")]
    [InlineData("Theatre and anthem", "theatre and anthem")] // articles only as whole words
    [InlineData("well-known", "wellknown")]                   // punctuation is deleted, not a separator
    [InlineData("U.S.A.", "usa")]
    [InlineData("the", "")]
    [InlineData("a_b", "ab")]                                  // '_' is punctuation
    public void Normalizes_as_the_official_script(string text, string expected) =>
        Assert.Equal(expected, SquadScoring.Normalize(text));

    [Fact]
    public void Exact_match_ignores_articles_punctuation_case_and_spacing()
    {
        Assert.True(SquadScoring.ExactMatch("the Broncos.", "Broncos"));
        Assert.True(SquadScoring.ExactMatch("An  Apple!", "apple"));
        Assert.False(SquadScoring.ExactMatch("Broncos team", "Broncos"));
    }

    [Fact]
    public void F1_by_hand()
    {
        // "denver broncos team" vs "denver broncos": 2 shared tokens, P = 2/3, R = 1, F1 = 2·(2/3)/(5/3) = 0.8
        Assert.Equal(0.8, SquadScoring.F1V1("Denver Broncos team", "the Denver Broncos"), 12);
        // Counter intersection: "new york new york" vs "new york" share 2 tokens (not 4): P = 1/2, R = 1, F1 = 2/3
        Assert.Equal(2.0 / 3, SquadScoring.F1V1("new york new york", "New York"), 12);
        Assert.Equal(0, SquadScoring.F1V1("Broncos", "Panthers"));
        // v1.1: empty against empty shares no token: 0. v2.0: both empty agree: 1.
        Assert.Equal(0, SquadScoring.F1V1("", "the"));
        Assert.Equal(1, SquadScoring.F1V2("", ""));
        Assert.Equal(0, SquadScoring.F1V2("", "Broncos"));
    }

    [Fact]
    public void Several_gold_answers_score_the_maximum_and_missing_predictions_score_zero_in_v1()
    {
        var questions = new[]
        {
            Q("1", "Denver Broncos", "the Broncos"),              // EM via the second gold answer
            Q("2", "Denver Broncos", "Broncos"),                   // F1: max(0.8, 0.5) = 0.8, EM 0
            Q("3", "Carolina Panthers"),                           // no prediction: 0, still counted
        };
        var preds = new Dictionary<string, string> { ["1"] = "Broncos!", ["2"] = "Denver Broncos team" };
        var s = SquadScoring.EvaluateV1(questions, preds);
        Assert.Equal(3, s.Total);
        Assert.Equal(1, s.Missing);
        Assert.Equal(100.0 / 3, s.ExactMatch, 9);
        Assert.Equal(100.0 * (1 + 0.8) / 3, s.F1, 9);
        Assert.Equal(["exact_match", "f1", "total"], s.ToDictionary().Keys.Order());
    }

    [Fact]
    public void V2_scores_null_answers_and_breaks_down_HasAns_and_NoAns()
    {
        var questions = new[]
        {
            Q("a", "Denver Broncos"),
            Q("b", "Broncos"),
            Unanswerable("c"),
            Unanswerable("d"),
            Q("e", "the"),                  // normalizes to nothing: the gold becomes "" (only "" is right)
        };
        var preds = new Dictionary<string, string> { ["a"] = "Denver Broncos", ["b"] = "", ["c"] = "", ["d"] = "Panthers", ["e"] = "" };
        var s = SquadScoring.EvaluateV2(questions, preds);
        Assert.Equal("2.0", s.ScriptVersion);
        Assert.Equal(5, s.Total);
        Assert.Equal(100.0 * 3 / 5, s.ExactMatch, 9);     // a, c, e
        Assert.Equal(100.0 * 3 / 5, s.F1, 9);
        Assert.Equal(3, s.HasAnsTotal);                     // has_ans = the question has answers (e does)
        Assert.Equal(100.0 * 2 / 3, s.HasAnsExact!.Value, 9);
        Assert.Equal(2, s.NoAnsTotal);
        Assert.Equal(50, s.NoAnsExact!.Value, 9);
        Assert.Equal(50, s.NoAnsF1!.Value, 9);
        var d = s.ToDictionary();
        Assert.Contains("HasAns_f1", d.Keys);
        Assert.Contains("NoAns_exact", d.Keys);

        // v2.0 leaves questions without a prediction out of the totals.
        var partial = SquadScoring.EvaluateV2(questions, new Dictionary<string, string> { ["a"] = "Denver Broncos" });
        Assert.Equal(1, partial.Total);
        Assert.Equal(4, partial.Missing);
        Assert.Equal(100, partial.ExactMatch);
    }

    [Fact]
    public void V1_refuses_a_question_without_answers()
    {
        var e = Assert.Throws<BertSharpException>(() => SquadScoring.EvaluateV1(new[] { Q("x1") }, new Dictionary<string, string> { ["x1"] = "" }));
        Assert.Contains("x1", e.Message);
    }

    public static TheoryData<int> CaseIndexes()
    {
        var data = new TheoryData<int>();
        for (int i = 0; i < Cases.Value.Count; i++) data.Add(i);
        return data;
    }

    static readonly Lazy<List<JsonElement>> Cases = new(() =>
    {
        var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "squad", "scoring_cases.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray().ToList();
    });

    [Theory]
    [MemberData(nameof(CaseIndexes))]
    public void Matches_the_official_scripts_in_python(int index)
    {
        var c = Cases.Value[index];
        string pred = c.GetProperty("prediction").GetString()!, gold = c.GetProperty("gold").GetString()!;
        Assert.Equal(c.GetProperty("normalized_prediction").GetString(), SquadScoring.Normalize(pred));
        Assert.Equal(c.GetProperty("normalized_gold").GetString(), SquadScoring.Normalize(gold));
        Assert.Equal(c.GetProperty("exact_v1").GetBoolean(), SquadScoring.ExactMatch(pred, gold));
        Assert.Equal(c.GetProperty("f1_v1").GetDouble(), SquadScoring.F1V1(pred, gold), 12);
        Assert.Equal(c.GetProperty("f1_v2").GetDouble(), SquadScoring.F1V2(gold, pred), 12);
    }
}
