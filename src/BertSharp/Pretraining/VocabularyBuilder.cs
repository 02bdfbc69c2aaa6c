using System.Collections.Concurrent;
using BertSharp.Tokenization;

namespace BertSharp.Pretraining;

/// <summary>Learns a vocabulary from text: BERT's basic tokenization, word counts, then WordPiece merges.</summary>
public static class VocabularyBuilder
{
    public static List<string> Learn(IEnumerable<string> sentences, WordPieceTrainerOptions options, bool lowerCase = true)
    {
        // Basic tokenization needs no vocabulary beyond the special tokens.
        var basic = new BertTokenizer(options.SpecialTokens, new BertTokenizerOptions { LowerCase = lowerCase });
        var counts = new ConcurrentDictionary<string, long>();
        Parallel.ForEach(sentences.Chunk(2048), chunk =>
        {
            var local = new Dictionary<string, long>();
            foreach (var s in chunk) foreach (var w in basic.BasicTokenize(s)) local[w] = local.GetValueOrDefault(w) + 1;
            foreach (var (w, n) in local) counts.AddOrUpdate(w, n, (_, c) => c + n);
        });
        foreach (var special in options.SpecialTokens) counts.TryRemove(special, out _);
        return WordPieceTrainer.Train(counts, options);
    }
}
