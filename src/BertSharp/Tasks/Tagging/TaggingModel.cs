using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using BertSharp.Evaluation;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using BertSharp.Training;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BertSharp.Tasks.Tagging;

/// <summary>The predicted tag of each word.</summary>
public sealed record TaggingPrediction(IReadOnlyList<string> Words, IReadOnlyList<string> Tags) : TaskPrediction;

/// <summary>
/// Word-level tagging: BertForTokenClassification. Each word is tokenized on its own; its tag is learned and
/// predicted on its first WordPiece, the other pieces are ignored by the loss (label -100, as HF). A sentence
/// longer than the window is split into consecutive windows of whole words, never cut. Metrics: tag accuracy
/// over words; with chunk tags (B-/I-/E-/S-/O), entity precision/recall/F1 with seqeval's semantics (f1 then
/// selects the best model, else accuracy).
/// </summary>
public sealed class TaggingModel : TaskModel<TaggedSentence>
{
    public const string Task = "tag";

    private readonly Dictionary<string, int> tagIds;

    public TaggingModel(BertForTokenClassification model, BertTokenizer tokenizer, int maxSeqLength) : base(model, tokenizer, maxSeqLength)
    {
        tagIds = Tags.Select((l, i) => (l, i)).DistinctBy(x => x.l).ToDictionary(x => x.l, x => x.i);
        ChunkTags = Entities.IsChunkTagSet(Tags);
    }

    public IReadOnlyList<string> Tags => Config.Labels;
    /// <summary>Whether the tags are chunk tags (entity metrics are computed, and F1 picks the best model).</summary>
    public bool ChunkTags { get; }
    /// <summary>Null: seqeval's default (lenient) entity reading; a scheme: seqeval's strict mode with it.</summary>
    public EntityScheme? StrictScheme { get; set; }

    public override bool? TakesPairs => false;
    public override bool CutsLongInputs => false;
    public override string TaskName => Task;
    public override LabelKind LabelKind => LabelKind.Token;
    public override string SelectionMetric => ChunkTags ? "f1" : "accuracy";
    public override IReadOnlyList<string> PlotMetrics => ChunkTags ? ["accuracy", "f1"] : ["accuracy"];
    public override IReadOnlyList<string> EvaluationMetrics => ChunkTags ? ["loss", "accuracy", "precision", "recall", "f1"] : ["loss", "accuracy"];

    public static void Configure(BertConfig c, IReadOnlyList<string> tags)
    {
        c.Labels = tags.ToList();
        c.ProblemType = null;
        c.Extra["bertsharp_task"] = Task;
    }

    public static ExampleSet<TaggedSentence> Read(string path, DataFileOptions o) => TaggingData.Read(path, o);

    /// <summary>The tagging family: the tag set of the training sentences.</summary>
    public static TaskFamily<TaggedSentence> Family { get; } = new TaggingFamily();

    sealed class TaggingFamily : TaskFamily<TaggedSentence>
    {
        public override string Task => TaggingModel.Task;
        public override string Architecture => "BertForTokenClassification";
        public override string Description => "a tagging model";
        public override Type ModelType => typeof(TaggingModel);
        public override ExampleSet<TaggedSentence> Read(string path, DataFileOptions options) => TaggingModel.Read(path, options);

        public override void Configure(BertConfig c, IReadOnlyList<TaggedSentence> train)
        {
            var tags = TagSet(train);
            if (tags.Count < 2) throw new BertSharpException($"the training data has {tags.Count} tag{(tags.Count == 1 ? "" : "s")}; tagging needs at least 2");
            TaggingModel.Configure(c, tags);
        }

        public override TaskModel<TaggedSentence> Create(BertWithHead model, BertTokenizer tokenizer, int? maxSeqLength, string? folder) =>
            new TaggingModel((BertForTokenClassification)model, tokenizer, maxSeqLength ?? FolderMaxSeqLength(tokenizer, model.Config));

        public override RunArgs<FineTuneOptions> RunArgs => FineTuneArgs.Tagging;

        public override void Apply(TaskModel<TaggedSentence> model, FineTuneOptions options, IReadOnlyList<TaggedSentence> train) =>
            ((TaggingModel)model).StrictScheme = options.EntityScheme;
    }

    /// <summary>An entity scheme by name: IOB1, IOB2 (or BIO), IOBES (or BIOES).</summary>
    public static EntityScheme ParseScheme(string s) => s.ToUpperInvariant() switch
    {
        "IOB1" => EntityScheme.IOB1,
        "IOB2" or "BIO" => EntityScheme.IOB2,
        "IOBES" or "BIOES" => EntityScheme.IOBES,
        _ => throw new BertSharpException($"entityScheme '{s}': choose IOB1, IOB2 or IOBES") { Parameters = ["entityScheme"] },
    };

    /// <summary>The tag set of training sentences, sorted ordinally.</summary>
    public static List<string> TagSet(IEnumerable<TaggedSentence> sentences) =>
        sentences.SelectMany(s => s.Tags ?? []).Distinct().Order(StringComparer.Ordinal).ToList();

    /// <summary>The windows of one sentence: [CLS] pieces of whole words [SEP], each at most MaxSeqLength tokens.
    /// A word that alone exceeds the window keeps only its first pieces (its tag sits on the first).</summary>
    IEnumerable<Feature> Windows(IReadOnlyList<string> words, IReadOnlyList<string>? tags, int example)
    {
        int cap = MaxSeqLength - 2;
        var pieces = new int[words.Count][];
        for (int w = 0; w < words.Count; w++)
        {
            var ids = Tokenizer.Encode(words[w]);
            pieces[w] = ids.Length == 0 ? [Tokenizer.UnkId] : ids;   // every word gets a token, so every word gets a tag
        }
        int next = 0;
        while (next < words.Count)
        {
            var ids = new List<int> { Tokenizer.ClsId };
            var labels = new List<int> { -100 };
            var starts = new List<int> { -1 };
            int used = 0;
            while (next < words.Count && (used == 0 || used + pieces[next].Length <= cap))
            {
                var p = pieces[next];
                int take = Math.Min(p.Length, cap - used);
                int label = tags != null && tagIds.TryGetValue(tags[next], out int id) ? id : -100;
                for (int k = 0; k < take; k++)
                {
                    ids.Add(p[k]);
                    labels.Add(k == 0 ? label : -100);
                    starts.Add(k == 0 ? next : -1);
                }
                used += take;
                next++;
            }
            ids.Add(Tokenizer.SepId); labels.Add(-100); starts.Add(-1);
            yield return new Feature
            {
                InputIds = ids.ToArray(), TokenTypeIds = new int[ids.Count], Example = example,
                TokenLabels = labels.ToArray(), WordStarts = starts.ToArray(),
            };
        }
    }

    List<Feature> Features(IReadOnlyList<(IReadOnlyList<string> Words, IReadOnlyList<string>? Tags)> sentences)
    {
        var perSentence = new List<Feature>[sentences.Count];
        Parallel.For(0, sentences.Count, i => perSentence[i] = Windows(sentences[i].Words, sentences[i].Tags, i).ToList());
        return perSentence.SelectMany(f => f).ToList();
    }

    public override IReadOnlyList<Feature> Encode(IReadOnlyList<TaggedSentence> examples) =>
        Features(examples.Select(s => (s.Words, s.Tags)).ToList());

    public override BatchLoss Loss(Batch batch)
    {
        using var logits = Logits(batch);                              // [B, L, C]
        using var flat = logits.reshape(-1, logits.shape[^1]);
        using var labels = batch["labels"].reshape(-1);
        return new BatchLoss(functional.cross_entropy(flat, labels, ignore_index: -100), new Dictionary<string, Tensor>());
    }

    /// <summary>Predicted tag ids per sentence (windows joined back), and the summed cross-entropy of the words
    /// whose gold tag the model knows.</summary>
    (int[][] Predicted, double LossSum, int LossCount) Run(IReadOnlyList<(IReadOnlyList<string> Words, IReadOnlyList<string>? Tags)> sentences)
    {
        var features = Features(sentences);
        var predicted = sentences.Select(s => new int[s.Words.Count]).ToArray();
        double lossSum = 0;
        int lossCount = 0;
        int C = Config.NumLabels;
        Run(features, LabelKind, (idx, logits) =>
        {
            using var lp = functional.log_softmax(logits, -1);      // [B, L, C]
            long L = lp.shape[1];
            var v = lp.data<float>().ToArray();
            for (int j = 0; j < idx.Length; j++)
            {
                var f = features[idx[j]];
                for (int t = 0; t < f.Length; t++)
                {
                    int w = f.WordStarts![t];
                    if (w < 0) continue;
                    int offset = (int)((j * L + t) * C);
                    int best = 0;
                    for (int c = 1; c < C; c++) if (v[offset + c] > v[offset + best]) best = c;
                    predicted[f.Example][w] = best;
                    int gold = f.TokenLabels![t];
                    if (gold >= 0) { lossSum -= v[offset + gold]; lossCount++; }
                }
            }
        });
        return (predicted, lossSum, lossCount);
    }

    /// <summary>Tags each sentence, given as words.</summary>
    public IReadOnlyList<TaggingPrediction> Predict(IReadOnlyList<IReadOnlyList<string>> sentences)
    {
        var (pred, _, _) = Run(sentences.Select(s => (s, (IReadOnlyList<string>?)null)).ToList());
        return sentences.Select((s, i) => new TaggingPrediction(s, pred[i].Select(id => Tags[id]).ToArray())).ToList();
    }

    /// <summary>Tags a text split into words on whitespace.</summary>
    public TaggingPrediction Predict(string text) => Predict([SplitWords(text)])[0];

    public static string[] SplitWords(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);

    public override DatasetScore Score(IReadOnlyList<TaggedSentence> examples, bool withPredictions = false)
    {
        var labelled = examples.Where(s => s.Tags != null).ToList();
        var (pred, lossSum, lossCount) = Run(labelled.Select(s => (s.Words, s.Tags)).ToList());
        var gold = labelled.Select(s => s.Tags!).ToList();
        var predicted = pred.Select(p => (IReadOnlyList<string>)p.Select(id => Tags[id]).ToArray()).ToList();
        var goldFlat = gold.SelectMany(t => t).ToList();
        var predFlat = predicted.SelectMany(t => t).ToList();
        var wordReport = ClassificationReport.Compute(goldFlat, predFlat, Tags);
        var metrics = new Dictionary<string, double>
        {
            ["loss"] = lossCount == 0 ? 0 : lossSum / lossCount,
            ["accuracy"] = wordReport.Accuracy,
        };
        var inv = CultureInfo.InvariantCulture;
        var text = new StringBuilder();
        text.Append(string.Format(inv, "{0} sentences, {1} words: tag accuracy {2:P2}\n", labelled.Count, goldFlat.Count, wordReport.Accuracy));
        int unknown = goldFlat.Count(t => !tagIds.ContainsKey(t));
        if (unknown > 0)
            text.Append($"{unknown} words have tags the model does not know ({string.Join(", ", goldFlat.Where(t => !tagIds.ContainsKey(t)).Distinct().Take(10))}); they count as errors\n");
        bool entities = ChunkTags || Entities.IsChunkTagSet(goldFlat);
        if (entities)
        {
            var scheme = Entities.Detect(gold);
            var scores = Entities.Score(gold, predicted, StrictScheme);
            metrics["precision"] = scores.Precision;
            metrics["recall"] = scores.Recall;
            metrics["f1"] = scores.F1;
            text.Append(string.Format(inv, "entities ({0}; gold tags look like {1}): precision {2:F4}, recall {3:F4}, F1 {4:F4}\n\n",
                StrictScheme is { } s ? $"seqeval strict {s}" : "seqeval default mode", scheme?.ToString() ?? "no scheme", scores.Precision, scores.Recall, scores.F1));
            text.Append(scores.Format());
        }
        text.Append('\n').Append(TagTable(wordReport));
        List<JsonObject>? rows = null;
        if (withPredictions)
            rows = labelled.Select((s, i) => new JsonObject
            {
                ["words"] = new JsonArray(s.Words.Select(w => (JsonNode?)w).ToArray()),
                ["tags"] = new JsonArray(s.Tags!.Select(w => (JsonNode?)w).ToArray()),
                ["predicted"] = new JsonArray(predicted[i].Select(w => (JsonNode?)w).ToArray()),
            }).ToList();
        return new DatasetScore(metrics, text.ToString(), rows);
    }

    /// <summary>Per-tag precision/recall/F1 and the most frequent confusions (a full matrix is too wide for a tag set).</summary>
    static string TagTable(ClassificationReport r)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        int w = Math.Max(8, r.Labels.Max(l => l.Length) + 2);
        sb.Append("tag".PadRight(w)).Append("precision  recall     f1         support\n");
        foreach (var c in r.Classes.Where(c => c.Support + c.Predicted > 0))
            sb.Append(c.Label.PadRight(w)).Append(string.Format(inv, "{0,-11:F4}{1,-11:F4}{2,-11:F4}{3}\n", c.Precision, c.Recall, c.F1, c.Support));
        var confusions = new List<(string Gold, string Pred, long Count)>();
        for (int i = 0; i < r.Labels.Count; i++)
            for (int j = 0; j < r.Labels.Count; j++)
                if (i != j && r.Confusion[i, j] > 0) confusions.Add((r.Labels[i], r.Labels[j], r.Confusion[i, j]));
        if (confusions.Count > 0)
        {
            sb.Append("\nmost frequent confusions (gold → predicted: words)\n");
            foreach (var (g, p, n) in confusions.OrderByDescending(c => c.Count).ThenBy(c => c.Gold, StringComparer.Ordinal).Take(10))
                sb.Append($"  {g} → {p}: {n}\n");
        }
        return sb.ToString();
    }

    public override DatasetScore EvaluateFile(string path, DataFileOptions options, bool withPredictions = false) =>
        WithNotes(Read(path, options), withPredictions);

    /// <summary>Tags each input: its words, else its text (and pair) split on whitespace.</summary>
    public override IReadOnlyList<TaskPrediction> Predict(IReadOnlyList<PredictInput> inputs) =>
        Predict(inputs.Select(i => i.Words ?? SplitWords(i.Pair is null ? i.Text : i.Text + " " + i.Pair)).ToList());
}
