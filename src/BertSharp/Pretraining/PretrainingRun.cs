using System.Collections.Concurrent;
using BertSharp.Checkpoints;
using BertSharp.Data;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using BertSharp.Training;
using TorchSharp;

namespace BertSharp.Pretraining;

public sealed record PretrainingRunOptions
{
    /// <summary>"wikitext-2" or a corpus file (.tokens, .txt, .jsonl, each optionally .gz).</summary>
    public string Corpus { get; init; } = "wikitext-2";
    /// <summary>A validation corpus file; for a file corpus without one, the last 5% of its documents.</summary>
    public string? ValidationCorpus { get; init; }
    public string? DataDir { get; init; }
    public string ModelPreset { get; init; } = "seed";
    /// <summary>An existing vocab.txt; when null, a WordPiece vocabulary is learned from the training corpus.</summary>
    public string? Vocab { get; init; }
    public int VocabSize { get; init; } = 20256;
    public int VocabMinFrequency { get; init; } = 2;
    public bool LowerCase { get; init; } = true;
    public int? MaxSeqLength { get; init; }
    public int BatchSize { get; init; } = 512;
    public int MaxPredictionsPerSeq { get; init; } = 10;
    public double MaskedLmProb { get; init; } = 0.15;
    public double ShortSeqProb { get; init; } = 0.1;
    public bool WholeWordMask { get; init; }
    public bool StaticMask { get; init; }
    public int? MaxValidationExamples { get; init; } = 4096;
    /// <summary>"fp32" or "bf16" (bfloat16 activations and matmuls; float32 weights, optimizer state and losses).</summary>
    public string Precision { get; init; } = "fp32";
    /// <summary>"cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";
}

/// <summary>Everything `bert pretrain` does before training: corpus, vocabulary, examples, model.</summary>
public static class PretrainingRun
{
    public sealed record Prepared(PretrainingTask Task, BertTokenizer Tokenizer, BertConfig Config, int TrainExamples,
        int ValidationExamples, double ValidationUnkRate, double MajorityBaselineAccuracy, string? BuiltVocabReport);

    public static Prepared Prepare(PretrainingRunOptions o, string outputDir, long seed, bool resume, Action<string>? log = null)
    {
        var (trainDocs, validDocs) = ReadCorpus(o, log);
        BertTokenizer tokenizer;
        string? vocabReport = null;
        // The checkpoint a resume continues from (after a crash it may be last.new or last.old).
        var resumeCheckpoint = resume ? RunFolder.FindCheckpoint(new RunFolder(outputDir).LastCheckpoint) : null;
        var resumeVocab = Path.Combine(resumeCheckpoint ?? "", BertTokenizer.VocabFileName);
        if (o.Vocab != null)
            tokenizer = BertTokenizer.FromVocabFile(o.Vocab, o.LowerCase);
        else if (resumeCheckpoint != null && File.Exists(resumeVocab))
            tokenizer = BertTokenizer.FromVocabFile(resumeVocab, o.LowerCase);
        else
        {
            log?.Invoke($"learning a {o.VocabSize}-token WordPiece vocabulary from {trainDocs.Count} documents");
            var vocab = VocabularyBuilder.Learn(trainDocs.SelectMany(d => d.Sentences), new WordPieceTrainerOptions { VocabSize = o.VocabSize, MinFrequency = o.VocabMinFrequency }, o.LowerCase);
            tokenizer = new BertTokenizer(vocab, new BertTokenizerOptions { LowerCase = o.LowerCase });
            vocabReport = $"vocabulary: {vocab.Count} tokens learned";
        }
        var config = BertConfig.FromPreset(o.ModelPreset, tokenizer.VocabSize);
        int maxSeq = o.MaxSeqLength ?? Math.Min(128, config.MaxPositionEmbeddings);
        if (maxSeq > config.MaxPositionEmbeddings)
            throw new BertSharpException($"--max-seq-length {maxSeq} exceeds the {o.ModelPreset} preset's max_position_embeddings {config.MaxPositionEmbeddings}");

        log?.Invoke("tokenizing");
        var trainIds = Tokenize(tokenizer, trainDocs);
        var validIds = Tokenize(tokenizer, validDocs);
        double unkRate = UnkRate(validIds, tokenizer.UnkId);

        var data = new PretrainingDataOptions
        {
            MaxSeqLength = maxSeq, MaxPredictionsPerSeq = o.MaxPredictionsPerSeq, MaskedLmProb = o.MaskedLmProb,
            ShortSeqProb = o.ShortSeqProb, WholeWordMask = o.WholeWordMask,
        };
        var train = PretrainingExamples.CreateNspExamples(trainIds, data, tokenizer.ClsId, tokenizer.SepId, seed);
        var valid = PretrainingExamples.CreateNspExamples(validIds, data, tokenizer.ClsId, tokenizer.SepId, seed + 1);
        if (o.MaxValidationExamples is int cap && valid.Count > cap)
        {
            var pick = Enumerable.Range(0, valid.Count).ToArray();
            var rng = SplitMix.For(seed, 0x53554253 /* "SUBS" */);
            rng.Shuffle(pick);
            valid = pick.Take(cap).Order().Select(i => valid[i]).ToList();
        }
        log?.Invoke($"examples: {train.Count} train, {valid.Count} validation (max_seq_length {maxSeq})");

        TorchRuntime.Seed(seed);
        var model = (BertForPreTraining)ModelFolder.NewModel("BertForPreTraining", config, ComputeOptions.ForPrecision(o.Precision), o.Device);
        var task = new PretrainingTask(model, tokenizer, train, valid, data, o.BatchSize, seed, o.StaticMask);
        double baseline = MajorityBaseline(trainIds, task.ValidationLabels);
        return new Prepared(task, tokenizer, config, train.Count, valid.Count, unkRate, baseline, vocabReport);
    }

    public static (List<Document> Train, List<Document> Valid) ReadCorpus(PretrainingRunOptions o, Action<string>? log)
    {
        if (o.Corpus.Equals("wikitext-2", StringComparison.OrdinalIgnoreCase))
        {
            var dl = new DatasetDownloadOptions { Progress = new DownloadProgressBar() };
            var trainPath = WikiText2.Locate(o.DataDir, "train", dl);
            var validPath = o.ValidationCorpus ?? WikiText2.Locate(o.DataDir, "valid", dl);
            log?.Invoke($"corpus: {trainPath}; validation: {validPath}");
            return (CorpusReader.Read(trainPath).ToList(), CorpusReader.Read(validPath).ToList());
        }
        var docs = CorpusReader.Read(o.Corpus).ToList();
        if (o.ValidationCorpus != null) return (docs, CorpusReader.Read(o.ValidationCorpus).ToList());
        if (docs.Count < 4) throw new BertSharpException($"{o.Corpus}: {docs.Count} documents; pre-training needs at least 4 (or give --validation-corpus)");
        int held = Math.Max(2, docs.Count / 20);
        log?.Invoke($"corpus: {o.Corpus}; validation: its last {held} documents");
        return (docs.Take(docs.Count - held).ToList(), docs.Skip(docs.Count - held).ToList());
    }

    /// <summary>Documents → sentences → WordPiece ids, in parallel, order kept; empty sentences dropped.</summary>
    public static List<IReadOnlyList<int[]>> Tokenize(BertTokenizer tokenizer, IReadOnlyList<Document> docs)
    {
        var result = new IReadOnlyList<int[]>[docs.Count];
        Parallel.For(0, docs.Count, d =>
        {
            result[d] = docs[d].Sentences.Select(tokenizer.Encode).Where(ids => ids.Length > 0).ToList();
        });
        return result.ToList();
    }

    public static double UnkRate(IEnumerable<IReadOnlyList<int[]>> docs, int unkId)
    {
        long total = 0, unk = 0;
        foreach (var d in docs) foreach (var s in d) { total += s.Length; foreach (var id in s) if (id == unkId) unk++; }
        return total == 0 ? 0 : (double)unk / total;
    }

    /// <summary>MLM accuracy of always predicting the corpus's most frequent token: the floor a model must beat.</summary>
    static double MajorityBaseline(IEnumerable<IReadOnlyList<int[]>> trainDocs, IReadOnlyList<int> validationLabels)
    {
        var counts = new Dictionary<int, long>();
        foreach (var d in trainDocs) foreach (var s in d) foreach (var id in s) counts[id] = counts.GetValueOrDefault(id) + 1;
        if (counts.Count == 0 || validationLabels.Count == 0) return 0;
        int top = counts.MaxBy(kv => kv.Value).Key;
        return validationLabels.Count(l => l == top) / (double)validationLabels.Count;
    }
}

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
