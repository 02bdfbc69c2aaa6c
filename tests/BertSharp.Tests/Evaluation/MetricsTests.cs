using BertSharp.Evaluation;

namespace BertSharp.Tests.Evaluation;

/// <summary>Metric functions against values computed by hand (and matching scipy / scikit-learn / seqeval).</summary>
public class MetricsTests
{
    [Fact]
    public void PearsonMatchesHandComputation()
    {
        // x̄ = 3, ȳ = 4; Σdxdy = 6, Σdx² = 10, Σdy² = 6 → r = 6 / √60
        double r = Metrics.Pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]);
        Assert.Equal(6 / Math.Sqrt(60), r, 12);
        Assert.Equal(0.7745966692414834, r, 12);
        Assert.Equal(-1.0, Metrics.Pearson([1, 2, 3], [3, 2, 1]), 12);
    }

    [Fact]
    public void PearsonOfAConstantIsUndefined()
    {
        Assert.True(double.IsNaN(Metrics.Pearson([1, 1, 1], [1, 2, 3])));
        Assert.True(double.IsNaN(Metrics.Pearson([1], [2])));
    }

    [Fact]
    public void AverageRanksShareTies()
    {
        Assert.Equal([2, 4, 4, 4, 1], Metrics.AverageRanks([10, 20, 20, 20, 5]));
        Assert.Equal([1.5, 1.5, 3], Metrics.AverageRanks([0.5, 0.5, 7]));
    }

    [Fact]
    public void SpearmanWithTiesIsPearsonOfAverageRanks()
    {
        // ranks of x = [1, 2.5, 2.5, 4], of y = [1, 3, 2, 4]; Σdxdy = 4.5, Σdx² = 4.5, Σdy² = 5 → 4.5 / √22.5
        double rho = Metrics.Spearman([1, 2, 2, 3], [1, 3, 2, 4]);
        Assert.Equal(4.5 / Math.Sqrt(22.5), rho, 12);
        Assert.Equal(0.9486832980505138, rho, 12);   // scipy.stats.spearmanr
        // monotone but not linear: Spearman 1, Pearson below 1
        Assert.Equal(1.0, Metrics.Spearman([1, 2, 3, 4], [1, 4, 9, 100]), 12);
    }

    [Fact]
    public void MultiLabelScoresAreScikitLearnsOnIndicatorMatrices()
    {
        string[][] gold = [["a", "b"], ["b"], [], ["a", "c"]];
        string[][] pred = [["a"], ["b", "c"], [], ["a", "b", "c"]];
        // a: TP 2 of 2 predicted, 2 gold → P R F 1; b: TP 1 of 2, 2 → ½ ½ ½; c: TP 1 of 2, 1 → P ½ R 1 F 2·1/(2+1)
        // micro: TP 4, predicted 6, gold 5 → P 4/6, R 4/5, F1 8/11 (f1_score(average="micro"))
        var r = MultiLabelReport.Compute(gold, pred, ["a", "b", "c"]);
        Assert.Equal(["a", "b", "c"], r.Classes.Select(c => c.Label));
        Assert.Equal([1.0, 0.5, 2.0 / 3], r.Classes.Select(c => c.F1));
        Assert.Equal([1.0, 0.5, 0.5], r.Classes.Select(c => c.Precision));
        Assert.Equal([1.0, 0.5, 1.0], r.Classes.Select(c => c.Recall));
        Assert.Equal([2, 2, 1], r.Classes.Select(c => c.Support));
        Assert.Equal(4.0 / 6, r.MicroPrecision, 12);
        Assert.Equal(4.0 / 5, r.MicroRecall, 12);
        Assert.Equal(8.0 / 11, r.MicroF1, 12);
        Assert.Equal((1 + 0.5 + 2.0 / 3) / 3, r.MacroF1, 12);
        Assert.Equal(0.25, r.SubsetAccuracy, 12);          // only the empty set is exact
        // a label in neither gold nor predictions is a 0 in the macro average, as for an indicator matrix's column
        Assert.Equal((1 + 0.5 + 2.0 / 3) / 4, MultiLabelReport.Compute(gold, pred, ["a", "b", "c", "d"]).MacroF1, 12);
        var text = r.Format();
        Assert.Contains("micro avg", text);
        Assert.Contains("subset accuracy  0.2500", text);
    }

    [Fact]
    public void TheThresholdMaximisesMicroF1OnTheGridAndTiesGoToTheNearestToAHalf()
    {
        bool[][] gold = [[true, false], [false, true]];
        // ≤ 0.25: all four predicted (F1 2/3); 0.30: 0.8, 0.36, 0.33 (TP 2 of 3: F1 4/5); 0.35: 0.8, 0.36 (½); 0.40–0.80: 0.8 (2/3)
        Assert.Equal(0.30, MultiLabelReport.BestThreshold([[0.8, 0.28], [0.36, 0.33]], gold), 12);
        Assert.Equal(0.5, MultiLabelReport.BestThreshold([[0.9, 0.1], [0.2, 0.7]], gold), 12);   // 0.25 … 0.70 are all perfect
        Assert.Equal(0.40, MultiLabelReport.BestThreshold([[0.42, 0.02]], [[true, false]]), 12);   // 0.05 … 0.40 are
        Assert.Equal(19, MultiLabelReport.ThresholdGrid.Count);
        Assert.Equal(0.05, MultiLabelReport.ThresholdGrid[0]);
        Assert.Equal(0.95, MultiLabelReport.ThresholdGrid[^1]);
    }

    [Fact]
    public void MacroF1AveragesPerClassF1()
    {
        string[] gold = ["a", "a", "b", "b", "c", "c"];
        string[] pred = ["a", "b", "b", "b", "c", "a"];
        // a: P 1/2 R 1/2 F 1/2; b: P 2/3 R 1 F 4/5; c: P 1 R 1/2 F 2/3
        double expected = (0.5 + 0.8 + 2.0 / 3) / 3;
        Assert.Equal(expected, Metrics.MacroF1(gold, pred), 12);
        var r = ClassificationReport.Compute(gold, pred, ["a", "b", "c"]);
        Assert.Equal(4.0 / 6, r.Accuracy, 12);
        Assert.Equal(expected, r.MacroF1, 12);
        Assert.Equal(2.0 / 3, r.Classes[1].Precision, 12);
        Assert.Equal(1.0, r.Classes[1].Recall, 12);
        // confusion: rows gold, columns predicted
        Assert.Equal(1, r.Confusion[0, 0]);
        Assert.Equal(1, r.Confusion[0, 1]);
        Assert.Equal(2, r.Confusion[1, 1]);
        Assert.Equal(1, r.Confusion[2, 0]);
        Assert.Equal(1, r.Confusion[2, 2]);
        Assert.Contains("confusion matrix", r.Format());
    }

    [Fact]
    public void MacroF1CountsLabelsThatOccurInGoldOrPredictions()
    {
        // scikit-learn f1_score(["a","a"], ["a","b"], average="macro") = (2/3 + 0) / 2
        Assert.Equal(1.0 / 3, Metrics.MacroF1(["a", "a"], ["a", "b"]), 12);
        // a label of the model that occurs nowhere is listed but not averaged
        var r = ClassificationReport.Compute(["a", "a"], ["a", "b"], ["a", "b", "z"]);
        Assert.Equal(1.0 / 3, r.MacroF1, 12);
        Assert.Equal(["a", "b", "z"], r.Labels);
    }
}

public class EntityTests
{
    static IReadOnlyList<string> T(string s) => s.Split(' ');

    [Fact]
    public void Iob2EntityF1()
    {
        // gold PER[0,2) LOC[3,4); predicted PER[0,2) ORG[3,4): 1 of 2 right each way
        var s = Entities.Score([T("B-PER I-PER O B-LOC")], [T("B-PER I-PER O B-ORG")]);
        Assert.Equal(0.5, s.Precision, 12);
        Assert.Equal(0.5, s.Recall, 12);
        Assert.Equal(0.5, s.F1, 12);
        Assert.Equal(2, s.GoldEntities);
    }

    [Fact]
    public void SeqevalReadmeExample()
    {
        IReadOnlyList<string>[] gold = [T("O O O B-MISC I-MISC I-MISC O"), T("B-PER I-PER O")];
        IReadOnlyList<string>[] pred = [T("O O B-MISC I-MISC I-MISC I-MISC O"), T("B-PER I-PER O")];
        Assert.Equal(0.5, Entities.Score(gold, pred).F1, 12);
    }

    [Fact]
    public void Iob1ChunksStartWithIAndSplitOnB()
    {
        Assert.Equal(
            [new Entity(0, "PER", 0, 2), new Entity(0, "PER", 2, 3), new Entity(0, "LOC", 4, 5)],
            Entities.Extract(T("I-PER I-PER B-PER O I-LOC")));
        // IOB1 gold PER[0,2) LOC[3,4); predicted PER[0,1) LOC[3,4)
        var s = Entities.Score([T("I-PER I-PER O I-LOC")], [T("I-PER O O I-LOC")]);
        Assert.Equal(0.5, s.Precision, 12);
        Assert.Equal(0.5, s.Recall, 12);
        Assert.Equal(0.5, s.F1, 12);
        // strict IOB1 reads the same chunks as the default mode here
        Assert.Equal(Entities.Extract(T("I-PER I-PER B-PER O")), Entities.ExtractStrict(T("I-PER I-PER B-PER O"), EntityScheme.IOB1));
    }

    [Fact]
    public void StrictIob2RejectsChunksWithoutB()
    {
        // seqeval docs: default mode f1 = 1.0, mode="strict" scheme=IOB2 f1 = 0.0
        IReadOnlyList<string>[] gold = [T("B-NP I-NP O")];
        IReadOnlyList<string>[] pred = [T("I-NP I-NP O")];
        Assert.Equal(1.0, Entities.Score(gold, pred).F1, 12);
        Assert.Equal(0.0, Entities.Score(gold, pred, EntityScheme.IOB2).F1, 12);
        Assert.Throws<BertSharpException>(() => Entities.ExtractStrict(T("S-PER"), EntityScheme.IOB2));
    }

    [Fact]
    public void IobesSingletonsAndEnds()
    {
        var expected = new[] { new Entity(0, "PER", 0, 1), new Entity(0, "LOC", 2, 4) };
        Assert.Equal(expected, Entities.Extract(T("S-PER O B-LOC E-LOC")));
        Assert.Equal(expected, Entities.ExtractStrict(T("S-PER O B-LOC E-LOC"), EntityScheme.IOBES));
        // a B without its E is not an entity in strict IOBES
        Assert.Empty(Entities.ExtractStrict(T("B-LOC I-LOC O"), EntityScheme.IOBES));
    }

    [Fact]
    public void DetectsTheScheme()
    {
        Assert.Equal(EntityScheme.IOB2, Entities.Detect([T("B-PER I-PER O B-LOC")]));
        Assert.Equal(EntityScheme.IOB1, Entities.Detect([T("O I-PER I-PER B-PER")]));
        Assert.Equal(EntityScheme.IOBES, Entities.Detect([T("S-PER O B-LOC E-LOC")]));
        Assert.Null(Entities.Detect([T("DT NN VBZ .")]));
        Assert.False(Entities.IsChunkTagSet(["NNP", "-NONE-", "O"]));
        Assert.True(Entities.IsChunkTagSet(["B-NP", "O", "I-VP"]));
    }
}
