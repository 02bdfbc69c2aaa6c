namespace BertSharp.Training;

public sealed record TrainingOptions
{
    public required string OutputDir { get; init; }
    public double LearningRate { get; init; } = 1e-4;
    /// <summary>Warmup steps; when null, WarmupRatio of the total steps.</summary>
    public long? WarmupSteps { get; init; }
    public double WarmupRatio { get; init; } = 0.1;
    /// <summary>Optimizer steps to train; when null, Epochs passes over the data.</summary>
    public long? MaxSteps { get; init; }
    public int Epochs { get; init; } = 1;
    public int GradientAccumulation { get; init; } = 1;
    public double WeightDecay { get; init; } = 0.01;
    public double AdamEpsilon { get; init; } = 1e-6;
    public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Evaluate (and write the last checkpoint) every N optimizer steps; 0 = once per epoch.</summary>
    public long EvalEvery { get; init; }
    /// <summary>The evaluation metric that picks the best model, one of the task's <see cref="ITrainingTask.Metrics"/>
    /// (null: the task's <see cref="ITrainingTask.SelectionMetric"/>).</summary>
    public string? SelectionMetric { get; init; }
    /// <summary>Stop once this many evaluations in a row have not improved on the best selection metric (null: train
    /// to the last step). The run then counts as completed, its best model kept.</summary>
    public int? EarlyStoppingPatience { get; init; }
    /// <summary>Write a train row to the metrics every N optimizer steps.</summary>
    public long LogEvery { get; init; } = 1;
    public long Seed { get; init; } = 42;
    public bool Resume { get; init; }
}

/// <summary>What the Trainer reports after each optimizer step, for a progress display.</summary>
public sealed record TrainerProgress(long Step, long TotalSteps, int Epoch, double Loss, double SequencesPerSecond, TimeSpan Elapsed);

/// <summary>Where a training run stands when <see cref="Trainer.Train"/> returns: whether it is complete (it reached its
/// last step or stopped early; else it was interrupted, its state saved), the best step (-1: none yet) and its value of the selection metric,
/// and the last evaluation made in this process (empty when none was).</summary>
public sealed record TrainingResult(bool Completed, long Step, long TotalSteps, long BestStep, double? BestMetric, string SelectionMetric,
    IReadOnlyDictionary<string, double> LastEvaluation)
{
    /// <summary>Why a completed run stopped before its last step (early stopping); null when it ran to the end.</summary>
    public string? StopReason { get; init; }
}
