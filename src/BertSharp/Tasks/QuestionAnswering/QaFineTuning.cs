using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;

namespace BertSharp.Tasks.QuestionAnswering;

public sealed record QaFineTuningOptions
{
    /// <summary>The dtype and kernels the model computes with.</summary>
    public ComputeOptions Compute { get; init; } = ComputeOptions.Default;
    /// <summary>A SQuAD v1.1/v2.0 training file.</summary>
    public required string Train { get; init; }
    /// <summary>A SQuAD file to evaluate on (picks the best model); or use <see cref="SplitArticles"/>.</summary>
    public string? Dev { get; init; }
    /// <summary>Train on the first N articles of <see cref="Train"/> and evaluate on the rest (instead of Dev).</summary>
    public int? SplitArticles { get; init; }
    /// <summary>A model folder: pre-trained weights (a new qa_outputs head is added), or with RandomInit only its
    /// config and vocabulary.</summary>
    public string? Model { get; init; }
    /// <summary>Start from random weights (the same size as Model's config, or ModelPreset).</summary>
    public bool RandomInit { get; init; }
    public string ModelPreset { get; init; } = "seed";
    /// <summary>vocab.txt for a random-init model without a Model folder.</summary>
    public string? Vocab { get; init; }
    public bool LowerCase { get; init; } = true;
    public int? MaxSeqLength { get; init; }
    public int? DocStride { get; init; }
    public int? MaxQueryLength { get; init; }
    public int NBestSize { get; init; } = 20;
    public int MaxAnswerLength { get; init; } = 30;
    public bool Version2WithNegative { get; init; }
    public double NullScoreDiffThreshold { get; init; }
    public int BatchSize { get; init; } = 32;
    /// <summary>Evaluate on only the first N evaluation questions (quick runs).</summary>
    public int? MaxEvalQuestions { get; init; }
}

/// <summary>Everything `bert finetune qa` does before training: data, split, model, tokenizer, windows.</summary>
public static class QaFineTuning
{
    public sealed record Prepared(QaTask Task, BertTokenizer Tokenizer, QaSettings Settings, SquadDataset Train,
        SquadDataset Eval, QaFeatureSet TrainFeatures, QaFeatureSet EvalFeatures, LoadReport? LoadReport, string ModelDescription);

    public static (SquadDataset Train, SquadDataset Eval) ReadData(QaFineTuningOptions o)
    {
        var train = SquadDataset.Load(o.Train);
        SquadDataset eval;
        if (o.SplitArticles is int n)
        {
            if (o.Dev != null) throw new BertSharpException("give either --dev FILE or --split-articles N (which evaluates on the training file's remaining articles), not both");
            (train, eval) = train.SplitArticles(n);
        }
        else if (o.Dev != null) eval = SquadDataset.Load(o.Dev);
        else throw new BertSharpException("no evaluation data: give --dev FILE, or --split-articles N to train on the first N articles of --train and evaluate on the rest");
        foreach (var d in new[] { train, eval })
            if (d.HasUnanswerable && !o.Version2WithNegative)
                throw new BertSharpException($"{d.Source}: question {d.Examples.First(e => e.IsImpossible).Id} is unanswerable (is_impossible, SQuAD 2.0); train with --version-2-with-negative");
        var noAnswer = train.Examples.FirstOrDefault(e => !e.IsImpossible && e.Answers.Count == 0);
        if (noAnswer != null)
            throw new BertSharpException($"{train.Source}: question {noAnswer.Id} has no answer to train on (mark an unanswerable question \"is_impossible\": true and use --version-2-with-negative)");
        return (train, eval.Take(o.MaxEvalQuestions));
    }

    public static Prepared Prepare(QaFineTuningOptions o, long seed, Action<string>? log = null)
    {
        var (train, eval) = ReadData(o);
        log?.Invoke($"data: {train.Examples.Count} training questions ({train.Articles.Count} articles, {train.Source}); {eval.Examples.Count} evaluation questions ({eval.Articles.Count} articles, {eval.Source})");

        TorchRuntime.Seed(seed);
        BertForQuestionAnswering model;
        BertTokenizer tokenizer;
        LoadReport? report = null;
        string description;
        if (o.RandomInit)
        {
            BertConfig config;
            if (o.Model != null)
            {
                config = ModelFolder.ReadConfig(o.Model);
                tokenizer = o.Vocab != null ? BertTokenizer.FromVocabFile(o.Vocab, o.LowerCase) : BertTokenizer.FromFolder(o.Model);
                description = $"random init, the size of {o.Model}";
            }
            else
            {
                if (o.Vocab == null) throw new BertSharpException("--init random needs a vocabulary: --vocab FILE (or --model DIR to copy its config and vocab.txt)");
                tokenizer = BertTokenizer.FromVocabFile(o.Vocab, o.LowerCase);
                config = BertConfig.FromPreset(o.ModelPreset, tokenizer.VocabSize);
                description = $"random init, {o.ModelPreset} preset";
            }
            if (tokenizer.VocabSize != config.VocabSize)
                throw new BertSharpException($"the vocabulary has {tokenizer.VocabSize} tokens but the model's vocab_size is {config.VocabSize}");
            config.Validate();
            model = new BertForQuestionAnswering(config, o.Compute);
            model.InitWeights();
        }
        else
        {
            if (o.Model == null) throw new BertSharpException("give --model DIR (a pre-trained model folder), or --init random with --vocab FILE and --model-preset");
            var (m, r) = ModelFolder.Load(o.Model, QuestionAnswerer.Architecture, compute: o.Compute);
            model = (BertForQuestionAnswering)m;
            report = r;
            tokenizer = BertTokenizer.FromFolder(o.Model);
            description = $"pre-trained {o.Model}";
        }
        model.to(TorchRuntime.Device);
        var c = model.Config;
        description += $" ({c.NumHiddenLayers} layers, hidden {c.HiddenSize}, vocab {c.VocabSize}, {c.MaxPositionEmbeddings} positions)";

        var settings = QaSettings.ForModel(c.MaxPositionEmbeddings, o.MaxSeqLength, o.DocStride, o.MaxQueryLength) with
        {
            NBestSize = o.NBestSize, MaxAnswerLength = o.MaxAnswerLength,
            Version2WithNegative = o.Version2WithNegative, NullScoreDiffThreshold = o.NullScoreDiffThreshold,
        };
        settings.Validate(c.MaxPositionEmbeddings);
        var featurizer = new QaFeaturizer(tokenizer, settings);
        var trainFeatures = featurizer.Build(train.Examples, withTargets: true);
        var evalFeatures = featurizer.Build(eval.Examples, withTargets: true);
        int holding = trainFeatures.Features.Count(f => f.StartPosition > 0);
        log?.Invoke($"windows: max_seq_length {settings.MaxSeqLength}, doc_stride {settings.DocStride}, max_query_length {settings.MaxQueryLength}: " +
            $"{trainFeatures.Features.Count} training windows ({holding} hold their answer, the rest point at [CLS]), {evalFeatures.Features.Count} evaluation windows");
        if (trainFeatures.TruncatedQuestions + evalFeatures.TruncatedQuestions > 0)
            log?.Invoke($"questions cut to {settings.MaxQueryLength} tokens: {trainFeatures.TruncatedQuestions} training, {evalFeatures.TruncatedQuestions} evaluation");
        if (trainFeatures.AnswersOutsideWindows > 0)
            log?.Invoke($"{trainFeatures.AnswersOutsideWindows} training answers fit in no window whole (longer than the window); their windows point at [CLS]");
        var task = new QaTask(model, tokenizer, settings, trainFeatures, evalFeatures, o.BatchSize, seed, scoreVersion2: eval.IsVersion2);
        return new Prepared(task, tokenizer, settings, train, eval, trainFeatures, evalFeatures, report, description);
    }
}
