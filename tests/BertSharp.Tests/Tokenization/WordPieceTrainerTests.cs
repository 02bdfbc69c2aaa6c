using BertSharp.Tokenization;

namespace BertSharp.Tests.Tokenization;

public class WordPieceTrainerTests
{
    [Fact]
    public void MergesTheMostFrequentPairsInOrder()
    {
        var counts = new Dictionary<string, long> { ["hug"] = 10, ["pug"] = 5, ["pun"] = 12, ["bun"] = 4, ["hugs"] = 5 };
        var vocab = WordPieceTrainer.Train(counts, new WordPieceTrainerOptions { VocabSize = 16, MinFrequency = 2 });
        // specials, initial letters b h p, continuations ##g ##n ##s ##u, then merges:
        // ##u+##g (10+5+5=20) vs ##u+##n (12+4=16) vs h+##u (15) vs p+##u (17): ##ug first (20);
        // then p+##u? pairs now: h+##ug 15, p+##ug 5, p+##u 12, ##u+##n 16, b+##u 4, ##ug+##s 5 → ##un (16);
        // then h+##ug (15) → hug; then p+##un (12) → pun.
        Assert.Equal(new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "b", "h", "p", "##g", "##n", "##s", "##u", "##ug", "##un", "hug", "pun" }, vocab);
    }

    [Fact]
    public void IsDeterministicAndStopsAtMinFrequency()
    {
        var counts = new Dictionary<string, long> { ["ab"] = 3, ["cd"] = 1 };
        var v1 = WordPieceTrainer.Train(counts, new WordPieceTrainerOptions { VocabSize = 100, MinFrequency = 2 });
        var v2 = WordPieceTrainer.Train(new Dictionary<string, long>(counts.Reverse()), new WordPieceTrainerOptions { VocabSize = 100, MinFrequency = 2 });
        Assert.Equal(v1, v2);
        Assert.Contains("ab", v1);
        Assert.DoesNotContain("cd", v1); // occurs once, below MinFrequency
    }
}
