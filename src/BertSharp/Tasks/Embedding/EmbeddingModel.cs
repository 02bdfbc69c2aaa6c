using System.Globalization;
using System.Text.Json.Nodes;
using BertSharp.Evaluation;
using BertSharp.Modeling;
using BertSharp.Runtime;
using BertSharp.Tasks.Similarity;
using BertSharp.Tokenization;
using BertSharp.Training;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BertSharp.Tasks.Embedding;

/// <summary>The sentence embedding of one text: the vector, its token count ([CLS] and [SEP] included, before any
/// cut), whether it was cut at the maximum length, and how many windows a chunked text was embedded in.</summary>
public sealed record EmbeddingPrediction(float[] Vector, int Tokens, bool Truncated, int Windows = 1) : TaskPrediction;

/// <summary>
/// A sentence encoder as sentence-transformers builds one: a BertModel, a pooling of its last hidden states
/// (<see cref="SentencePooling"/>) and, optionally, L2 normalisation (<see cref="SentenceEmbeddingSettings"/>).
/// Prediction side: <see cref="EmbedTexts"/> (also behind <see cref="Inference.SentenceEncoder"/>); scoring: the cosine
/// Pearson/Spearman of scored pairs (STS), else retrieval accuracy of each anchor's positive among all the set's
/// candidates. Training side: scored pairs with CoSENT (or the cosine MSE) loss, (anchor, positive[, negative]) with
/// in-batch negatives (MultipleNegativesRankingLoss), at sentence-transformers' scale of 20.
/// </summary>
public sealed class EmbeddingModel : TaskModel<EmbeddingExample>
{
    public const string Task = "embed";

    /// <summary>The losses for scored pairs: CoSENT (sentence-transformers' CoSENTLoss) or "cosine" (the MSE of the
    /// cosine against the score divided by the largest training score: CosineSimilarityLoss).</summary>
    public static readonly string[] ScoredLosses = ["cosent", "cosine"];

    public EmbeddingModel(BertForEmbedding model, BertTokenizer tokenizer, int maxSeqLength, SentenceEmbeddingSettings settings) : base(model, tokenizer, maxSeqLength)
    {
        Settings = settings;
    }

    /// <summary>Pooling, normalisation, lower-casing; saved as the folder's sentence-transformers files.</summary>
    public SentenceEmbeddingSettings Settings { get; set; }
    /// <summary>The length of an embedding.</summary>
    public int Dimension => Settings.Dimension(Config.HiddenSize);
    public override string TaskName => Task;
    public override LabelKind LabelKind => LabelKind.Texts;
    /// <summary>The loss for scored pairs: "cosent" (default) or "cosine".</summary>
    public string ScoredLoss { get; set; } = "cosent";
    /// <summary>The factor on cosines in CoSENT and in-batch-negatives losses (sentence-transformers' 20).</summary>
    public double Scale { get; set; } = 20;

    string selection = "spearman";
    bool trainScored;
    double maxTrainScore = 1;

    /// <summary>"spearman" (the cosine Spearman) when the dev examples are scored pairs, else "accuracy".</summary>
    public override string SelectionMetric => selection;
    public override IReadOnlyList<string> PlotMetrics => selection == "spearman" ? ["spearman", "pearson"] : ["accuracy"];
    /// <summary>No loss: scoring embeddings needs no training objective.</summary>
    public override IReadOnlyList<string> EvaluationMetrics => selection == "spearman" ? ["spearman", "pearson"] : ["accuracy", "mrr"];

    public override void PrepareTraining(IReadOnlyList<EmbeddingExample> train, IReadOnlyList<EmbeddingExample> dev) =>
        selection = dev.Count > 0 && dev.All(e => e.Score.HasValue) ? "spearman" : "accuracy";

    public static void Configure(BertConfig c)
    {
        c.ProblemType = null;
        c.Extra["bertsharp_task"] = Task;
    }

    /// <summary>The embedding family: a BertModel with sentence-transformers pooling.</summary>
    public static TaskFamily<EmbeddingExample> Family { get; } = new EmbeddingFamily();

    sealed class EmbeddingFamily : TaskFamily<EmbeddingExample>
    {
        public override string Task => EmbeddingModel.Task;
        public override string Architecture => "BertModel";
        public override string Description => "a sentence embedding model";
        public override Type ModelType => typeof(EmbeddingModel);
        public override bool HasLabels => false;
        public override string NoDevHint => "an STS file (sentence pairs with scores) is the usual dev set";
        public override bool SplitHasTestPart => false;
        public override RunArgs<FineTuneOptions> RunArgs => FineTuneArgs.Embedding;
        public override ExampleSet<EmbeddingExample> Read(string path, DataFileOptions options) => EmbeddingData.Read(path, options);
        public override void Configure(BertConfig c, IReadOnlyList<EmbeddingExample> train) => EmbeddingModel.Configure(c);

        public override TaskModel<EmbeddingExample> Create(BertWithHead model, BertTokenizer tokenizer, int? maxSeqLength, string? folder)
        {
            var settings = folder is null ? new SentenceEmbeddingSettings() : SentenceEmbeddingSettings.Read(folder, model.Config.HiddenSize);
            int max = maxSeqLength ?? (settings.MaxSeqLength is int m ? Math.Min(m, model.Config.MaxPositionEmbeddings) : FolderMaxSeqLength(tokenizer, model.Config));
            return new EmbeddingModel((BertForEmbedding)model, tokenizer, max, settings);
        }

        public override void Apply(TaskModel<EmbeddingExample> model, FineTuneOptions options, IReadOnlyList<EmbeddingExample> train)
        {
            var m = (EmbeddingModel)model;
            if (options.Model != null && !options.RandomInit)
                m.Settings = SentenceEmbeddingSettings.Read(options.Model, m.Config.HiddenSize) with { MaxSeqLength = null };
            if (options.Pooling is { } p) m.Settings = m.Settings with { Pooling = p.Split('+').Select(SentenceEmbeddingSettings.ParseMode).ToList() };
            if (options.Normalize is bool n) m.Settings = m.Settings with { Normalize = n };
            if (options.Loss is { } loss)
            {
                if (!ScoredLosses.Contains(loss)) throw new BertSharpException($"loss '{loss}': choose {string.Join(" or ", ScoredLosses)} (for scored pairs; pairs and triples train with in-batch negatives)") { Parameters = ["loss"] };
                m.ScoredLoss = loss;
            }
        }
    }

    int[] Pieces(string text)
    {
        var ids = new List<int>();
        Tokenizer.EncodeInto(Settings.DoLowerCase ? text.ToLowerInvariant() : text, ids);
        return ids.ToArray();
    }

    /// <summary>[CLS] pieces [SEP], cut at <see cref="TaskModel.MaxSeqLength"/>.</summary>
    int[] Sequence(int[] pieces, int start = 0) => Tokenizer.Build(new ArraySegment<int>(pieces, start, pieces.Length - start), null, MaxSeqLength).InputIds;

    /// <summary>[B, D] float32 sentence embeddings of a padded batch (with gradients when training).</summary>
    public Tensor Embed(Tensor inputIds, Tensor tokenTypeIds, Tensor attentionMask, bool normalize = true)
    {
        using var hidden = ((BertForEmbedding)Model).Forward(inputIds, tokenTypeIds, attentionMask);   // [B, L, H]
        var pooled = SentencePooling.Pool(hidden, attentionMask, Settings.Pooling);                       // [B, D]
        if (!normalize || !Settings.Normalize) return pooled;
        using (pooled) return functional.normalize(pooled, p: 2, dim: -1);
    }

    /// <summary>The embeddings of token sequences ([CLS] … [SEP]) in their order, in length-sorted batches.</summary>
    float[][] EmbedSequences(IReadOnlyList<int[]> sequences, bool normalize)
    {
        var result = new float[sequences.Count][];
        if (sequences.Count == 0) return result;
        // The exported graph ends with the folder's own normalisation: usable unless an unnormalised vector is wanted
        // from a normalising model.
        if (Engine is { } engine && (normalize || !Settings.Normalize))
        {
            foreach (var idx in Batching.EvalOrder(sequences.Select(s => s.Length).ToList(), Math.Max(1, BatchSize)))
            {
                var (flat, d) = engine.Output(idx.Select(i => sequences[i]).ToList(), Tokenizer.PadId, "sentence_embedding");
                for (int j = 0; j < idx.Length; j++) result[idx[j]] = flat.AsSpan(j * d, d).ToArray();
            }
            return result;
        }
        Evaluating(() =>
        {
            foreach (var idx in Batching.EvalOrder(sequences.Select(s => s.Length).ToList(), Math.Max(1, BatchSize)))
            {
                using var scope = NewDisposeScope();
                var ids = idx.Select(i => sequences[i]).ToList();
                var t = Batching.PaddedInputs(ids, null, Tokenizer.PadId, out _, Device);
                using var e = Embed(t["input_ids"], t["token_type_ids"], t["attention_mask"], normalize).cpu();
                var flat = e.data<float>().ToArray();
                int d = (int)e.shape[1];
                for (int j = 0; j < idx.Length; j++) result[idx[j]] = flat.AsSpan(j * d, d).ToArray();
            }
        });
        return result;
    }

    /// <summary>
    /// The embedding of each text, in input order. A text longer than <see cref="TaskModel.MaxSeqLength"/> tokens is
    /// cut there (<see cref="EmbeddingPrediction.Truncated"/>), or, with <paramref name="chunk"/>, embedded in windows
    /// of that length overlapping by <paramref name="overlap"/> word pieces whose pooled vectors are averaged (weighted
    /// by their token counts) before normalisation.
    /// </summary>
    public IReadOnlyList<EmbeddingPrediction> EmbedTexts(IReadOnlyList<string> texts, bool chunk = false, int? overlap = null)
    {
        int room = MaxSeqLength - 2;
        int stride = room - Math.Clamp(overlap ?? room / 4, 0, room - 1);
        var pieces = new int[texts.Count][];
        if (texts.Count == 1) pieces[0] = Pieces(texts[0]);   // no thread-pool hop for a single text
        else Parallel.For(0, texts.Count, i => pieces[i] = Pieces(texts[i]));
        var windows = new List<int[]>();
        var owners = new List<int>();
        for (int i = 0; i < texts.Count; i++)
        {
            for (int start = 0; ; start += stride)
            {
                windows.Add(Sequence(pieces[i], start));
                owners.Add(i);
                if (!chunk || start + room >= pieces[i].Length) break;
            }
        }
        bool combine = windows.Count != texts.Count;
        var vectors = EmbedSequences(windows, normalize: !combine);
        var result = new EmbeddingPrediction[texts.Count];
        if (!combine)
        {
            for (int i = 0; i < texts.Count; i++) result[i] = new EmbeddingPrediction(vectors[i], pieces[i].Length + 2, pieces[i].Length > room);
            return result;
        }
        int w = 0;
        for (int i = 0; i < texts.Count; i++)
        {
            var sum = new double[vectors[w].Length];
            double weight = 0;
            int count = 0;
            for (; w < windows.Count && owners[w] == i; w++, count++)
            {
                int n = windows[w].Length;
                for (int k = 0; k < sum.Length; k++) sum[k] += n * vectors[w][k];
                weight += n;
            }
            var v = sum.Select(x => (float)(x / weight)).ToArray();
            if (Settings.Normalize) v = Search.VectorMath.Normalized(v);
            result[i] = new EmbeddingPrediction(v, pieces[i].Length + 2, Truncated: false, Windows: count);
        }
        return result;
    }

    /// <summary>The cosine similarity of two vectors.</summary>
    public static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
        return na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
    }

    /// <summary>One text: its embedding; a pair: the cosine similarity of the two texts' embeddings.</summary>
    public override IReadOnlyList<TaskPrediction> Predict(IReadOnlyList<PredictInput> inputs)
    {
        var texts = inputs.Select(i => i.Text).Concat(inputs.Where(i => i.Pair != null).Select(i => i.Pair!)).ToList();
        var e = EmbedTexts(texts);
        var result = new TaskPrediction[inputs.Count];
        for (int i = 0, p = inputs.Count; i < inputs.Count; i++)
            result[i] = inputs[i].Pair is null ? e[i] : new SimilarityPrediction(Cosine(e[i].Vector, e[p++].Vector));
        return result;
    }

    public override DatasetScore EvaluateFile(string path, DataFileOptions options, bool withPredictions = false) =>
        WithNotes(EmbeddingData.Read(path, options), withPredictions);

    public override DatasetScore Score(IReadOnlyList<EmbeddingExample> examples, bool withPredictions = false) =>
        examples.Count > 0 && examples.All(e => e.Score.HasValue) ? ScoreCorrelation(examples, withPredictions) : ScoreRetrieval(examples, withPredictions);

    /// <summary>Each distinct text embedded once; the vector of a text.</summary>
    Func<string, float[]> EmbedDistinct(IEnumerable<string> texts)
    {
        var distinct = texts.Distinct().ToList();
        var vectors = EmbedTexts(distinct);
        var map = new Dictionary<string, float[]>();
        for (int i = 0; i < distinct.Count; i++) map[distinct[i]] = vectors[i].Vector;
        return t => map[t];
    }

    DatasetScore ScoreCorrelation(IReadOnlyList<EmbeddingExample> examples, bool withPredictions)
    {
        var vec = EmbedDistinct(examples.SelectMany(e => new[] { e.Text, e.Positive }));
        var cos = examples.Select(e => Cosine(vec(e.Text), vec(e.Positive))).ToArray();
        var gold = examples.Select(e => e.Score!.Value).ToArray();
        double pearson = Metrics.Pearson(gold, cos), spearman = Metrics.Spearman(gold, cos);
        var metrics = new Dictionary<string, double> { ["pearson"] = Finite(pearson), ["spearman"] = Finite(spearman) };
        string report = string.Format(CultureInfo.InvariantCulture, "{0} pairs: cosine Spearman {1:F4}, Pearson {2:F4}; cosines {3:F3}–{4:F3} (mean {5:F3})\n",
            gold.Length, spearman, pearson, cos.Min(), cos.Max(), cos.Average());
        var rows = withPredictions
            ? examples.Select((e, i) => new JsonObject { ["text"] = e.Text, ["pair"] = e.Positive, ["score"] = e.Score, ["cosine"] = Math.Round(cos[i], 6) }).ToList()
            : null;
        return new DatasetScore(metrics, report, rows);
    }

    /// <summary>Accuracy: how often an anchor's nearest candidate (all positives and negatives of the set) is its
    /// own positive; also the mean reciprocal rank.</summary>
    DatasetScore ScoreRetrieval(IReadOnlyList<EmbeddingExample> examples, bool withPredictions)
    {
        if (examples.Count == 0) return new DatasetScore(new Dictionary<string, double> { ["accuracy"] = 0, ["mrr"] = 0 }, "0 examples\n", withPredictions ? [] : null);
        var candidates = examples.Select(e => e.Positive).Concat(examples.Where(e => e.Negative != null).Select(e => e.Negative!)).Distinct().ToList();
        var vec = EmbedDistinct(examples.Select(e => e.Text).Concat(candidates));
        using var c = tensor(candidates.SelectMany(vec).ToArray(), [candidates.Count, Dimension]);
        using var cn = functional.normalize(c, p: 2, dim: -1);
        using var a = tensor(examples.SelectMany(e => vec(e.Text)).ToArray(), [examples.Count, Dimension]);
        using var an = functional.normalize(a, p: 2, dim: -1);
        using var sims = an.matmul(cn.t());                                                         // [N, C]
        var index = candidates.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => (long)x.i);
        using var target = tensor(examples.Select(e => index[e.Positive]).ToArray());
        using var own = sims.gather(1, target.unsqueeze(1));                                        // [N, 1]
        using var rank = sims.gt(own).sum(1).With(1L, (t, one) => t.add(one, Scalars.One));   // [N], 1 = first
        var ranks = rank.data<long>().ToArray();
        double accuracy = ranks.Count(r => r == 1) / (double)ranks.Length, mrr = ranks.Average(r => 1.0 / r);
        var metrics = new Dictionary<string, double> { ["accuracy"] = accuracy, ["mrr"] = mrr };
        string report = string.Format(CultureInfo.InvariantCulture, "{0} anchors, {1} candidates: accuracy (own positive ranked first) {2:F4}, MRR {3:F4}\n",
            examples.Count, candidates.Count, accuracy, mrr);
        var rows = withPredictions
            ? examples.Select((e, i) => new JsonObject { ["text"] = e.Text, ["positive"] = e.Positive, ["rank"] = ranks[i] }).ToList()
            : null;
        return new DatasetScore(metrics, report, rows);
    }

    // ---- training ----

    public override IReadOnlyList<Feature> Encode(IReadOnlyList<EmbeddingExample> examples)
    {
        int scored = examples.Count(e => e.Score.HasValue);
        if (scored != 0 && scored != examples.Count)
            throw new BertSharpException($"{examples.First(e => !e.Score.HasValue).Source}: some examples have a score and some do not; train on one kind");
        trainScored = scored > 0;
        maxTrainScore = trainScored ? Math.Max(1e-9, examples.Max(e => Math.Abs(e.Score!.Value))) : 1;
        var features = new Feature[examples.Count];
        Parallel.For(0, examples.Count, i =>
        {
            var e = examples[i];
            var ids = Sequence(Pieces(e.Text));
            var texts = e.Negative is null ? new[] { Sequence(Pieces(e.Positive)) } : [Sequence(Pieces(e.Positive)), Sequence(Pieces(e.Negative))];
            features[i] = new Feature { InputIds = ids, TokenTypeIds = new int[ids.Length], Example = i, Score = (float)(e.Score ?? 0), Texts = texts };
        });
        return features;
    }

    public override IEnumerable<string> EncodingNotes(IReadOnlyList<EmbeddingExample> train, IReadOnlyList<Feature> features, IReadOnlyList<EmbeddingExample> dev)
    {
        int triples = train.Count(e => e.Negative != null);
        yield return trainScored
            ? $"loss: {(ScoredLoss == "cosent" ? "CoSENT" : "cosine similarity MSE")} on {train.Count} scored pairs (scale {Scale})"
            : $"loss: in-batch negatives (MultipleNegativesRankingLoss, scale {Scale}) on {train.Count - triples} pairs and {triples} triples";
        yield return $"embedding: {SentenceEmbeddingSettings.Describe(Settings.Pooling)} pooling{(Settings.Normalize ? ", normalized" : "")}, {Dimension} dimensions";
    }

    public override BatchLoss Loss(Batch b)
    {
        using var scope = NewDisposeScope();
        var a = Embed(b["input_ids"], b["token_type_ids"], b["attention_mask"]);                     // [B, D]
        var p = Embed(b["input_ids_1"], b["token_type_ids_1"], b["attention_mask_1"]);               // [B, D]
        Tensor loss;
        if (trainScored)
        {
            var cos = functional.cosine_similarity(a, p, dim: 1);                                       // [B]
            var y = b["labels"];
            if (ScoredLoss == "cosine") loss = functional.mse_loss(cos, y.With(maxTrainScore, (t, s) => t.div(s)));
            else
            {
                // CoSENT: log(1 + Σ exp(s_i − s_j)) over the pairs whose gold order says s_i < s_j.
                var s = cos.With(Scale, (t, scale) => t.mul(scale));
                var diff = s.unsqueeze(1) - s.unsqueeze(0);                                             // [B, B]: s_i − s_j
                var wrongWay = y.unsqueeze(1).lt(y.unsqueeze(0));                                        // y_i < y_j
                var terms = diff.With(-1e12, (t, fill) => t.masked_fill(wrongWay.logical_not(), fill)).flatten();
                loss = cat([zeros(1, device: terms.device), terms]).logsumexp(0);
            }
        }
        else
        {
            var candidates = b.Tensors.ContainsKey("input_ids_2")
                ? cat([p, Embed(b["input_ids_2"], b["token_type_ids_2"], b["attention_mask_2"])])       // [B + N, D]
                : p;
            var scores = functional.normalize(a, p: 2, dim: -1).matmul(functional.normalize(candidates, p: 2, dim: -1).t()).With(Scale, (t, scale) => t.mul(scale));   // [B, B + N]
            loss = functional.cross_entropy(scores, Scalars.Range(a.shape[0], a.device));
        }
        return new BatchLoss(loss.MoveToOuterDisposeScope(), new Dictionary<string, Tensor>());
    }

    public override bool GroupsByLength => false;

    /// <summary>Writes the model folder with its sentence-transformers files, so sentence-transformers loads it.</summary>
    public override void Save(string dir)
    {
        base.Save(dir);
        Settings.Save(dir, Config.HiddenSize, MaxSeqLength);
    }
}
