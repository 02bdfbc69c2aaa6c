using System.CommandLine;
using BertSharp.Data;
using BertSharp.Pretraining;
using BertSharp.Tokenization;

namespace BertSharp.Cli.Commands;

public static class VocabCommand
{
    public static Command Build(CommandContext ctx)
    {
        var corpus = new Option<string>("--corpus") { Description = "wikitext-2 or a corpus file (.tokens, .txt, .jsonl, optionally .gz). " + TextLineReader.InputRule, DefaultValueFactory = _ => "wikitext-2" };
        var validation = new Option<string?>("--validation-corpus") { Description = "Where to measure the [UNK] rate (default: WikiText-2's valid split, or the last 5% of a file corpus's documents)" };
        var dataDir = new Option<string?>("--data-dir") { Description = $"Dataset folder (default: ${DatasetCache.DataDirEnvVar}, else ~/.cache/bertsharp/datasets)" };
        var size = new Option<int>("--vocab-size") { Description = "Tokens in the vocabulary, special tokens included", DefaultValueFactory = _ => 20256 };
        var minFreq = new Option<int>("--min-frequency") { Description = "Merge only pairs seen at least this often", DefaultValueFactory = _ => 2 };
        var cased = new Option<bool>("--cased") { Description = "Keep case and accents (default: lower-case and strip accents)" };
        var output = new Option<string>("--output") { Description = "The vocab.txt to write", Required = true };
        var build = new Command("build", "Learn a WordPiece vocabulary ([PAD] [UNK] [CLS] [SEP] [MASK] first) from a corpus; deterministic")
            { corpus, validation, dataDir, size, minFreq, cased, output };
        build.SetAction(r =>
        {
            var o = new PretrainingRunOptions { Corpus = r.GetValue(corpus)!, ValidationCorpus = r.GetValue(validation), DataDir = r.GetValue(dataDir), LowerCase = !r.GetValue(cased) };
            var (train, valid) = PretrainingRun.ReadCorpus(o, m => ctx.Err.WriteLine(m));
            var vocab = VocabularyBuilder.Learn(train.SelectMany(d => d.Sentences), new WordPieceTrainerOptions { VocabSize = r.GetValue(size), MinFrequency = r.GetValue(minFreq) }, o.LowerCase);
            var tokenizer = new BertTokenizer(vocab, new BertTokenizerOptions { LowerCase = o.LowerCase });
            var path = r.GetValue(output)!;
            AtomicFile.WriteAllText(path, string.Join("\n", vocab) + "\n");
            double unk = PretrainingRun.UnkRate(PretrainingRun.Tokenize(tokenizer, valid), tokenizer.UnkId);
            ctx.Out.WriteLine($"wrote {vocab.Count} tokens to {path}; [UNK] rate on the validation split: {unk:P3}");
            return 0;
        });
        var cmd = new Command("vocab", "Vocabulary tools") { build };
        return cmd;
    }
}
