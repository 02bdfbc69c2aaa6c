using BertSharp.Tasks.QuestionAnswering;
using BertSharp.Tests.Data;
using BertSharp.Tokenization;

namespace BertSharp.Tests.Tasks.QuestionAnswering;

/// <summary>The real SQuAD v1.1 dev file (BERTSHARP_DATA_DIR/squad/dev-v1.1.json).</summary>
public class SquadRealDataTests
{
    static string DevPath => Path.Combine(RealData.Dir!, "squad", "dev-v1.1.json");

    [RealDataFact("squad")]
    public void Dev_v1_1_reads_whole_and_splits_38_to_10_articles()
    {
        var d = SquadDataset.Load(DevPath);
        Assert.Equal("1.1", d.Version);
        Assert.Equal(48, d.Articles.Count);
        Assert.Equal(2067, d.Articles.Sum(a => a.Paragraphs));
        Assert.Equal(10570, d.Examples.Count);
        Assert.Equal(34726, d.Examples.Sum(e => e.Answers.Count));
        var (train, eval) = d.SplitArticles(38);
        Assert.Equal(8582, train.Examples.Count);
        Assert.Equal(1988, eval.Examples.Count);
        Assert.Equal("Intergovernmental_Panel_on_Climate_Change", eval.Articles[0].Title);
        Assert.Equal("Force", eval.Articles[^1].Title);

        // The gold answers score 100 against themselves; the official script's numbers for "predict the first answer".
        var first = d.Examples.ToDictionary(e => e.Id, e => e.Answers[0].Text);
        var s = SquadScoring.EvaluateV1(d.Examples, first);
        Assert.Equal(100, s.ExactMatch, 9);
        Assert.Equal(100, s.F1, 9);
    }

    [RealDataFact("squad")]
    public void Every_dev_answer_maps_to_tokens_that_cover_it_and_back()
    {
        var tok = BertTokenizer.FromFolder(TestPaths.TinyBert);
        var d = SquadDataset.Load(DevPath);
        var settings = QaSettings.ForModel(64);
        var set = new QaFeaturizer(tok, settings).Build(d.Examples, withTargets: true);
        int exact = 0, total = 0;
        for (int i = 0; i < d.Examples.Count; i++)
        {
            var context = set.Contexts[i];
            foreach (var answer in d.Examples[i].Answers)
            {
                var (first, last) = QaFeaturizer.AnswerTokens(context.Tokens, answer);
                Assert.True(first >= 0, $"question {d.Examples[i].Id}: answer {answer.Text} covers no token");
                int from = context.Tokens[first].Start, to = context.Tokens[last].End;
                // The tokens cover the answer, and start and end inside it (or at the word the answer cuts into).
                Assert.True(from <= answer.Start && to >= answer.End, $"question {d.Examples[i].Id}: tokens [{from}, {to}) do not cover {answer.Text} [{answer.Start}, {answer.End})");
                Assert.True(context.Tokens[first].End > answer.Start && context.Tokens[last].Start < answer.End);
                if (context.Text[from..to] == answer.Text) exact++;
                total++;
            }
        }
        // Answers that cut into a WordPiece ("1990" in "1990s" tokenized as one piece) cannot map exactly; nearly all do.
        Assert.True(exact > 0.97 * total, $"{exact} of {total} answers map back exactly");
        // Training windows: a window that holds the answer points at it.
        Assert.Equal(d.Examples.Count, set.Features.Where(f => f.StartPosition > 0).Select(f => f.ExampleIndex).Distinct().Count() + set.AnswersOutsideWindows);
    }
}
