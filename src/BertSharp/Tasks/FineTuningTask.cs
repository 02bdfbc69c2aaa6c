using BertSharp.Modeling;
using BertSharp.Training;

namespace BertSharp.Tasks;

/// <summary>The fine-tuning <see cref="ITrainingTask"/> of every task family: batches of training features (in the
/// task's order, dynamically padded), the task model's loss, and its score on the dev examples. A task that predicts
/// from an input's windows together (<see cref="TaskModel{TExample}.CombinesWindows"/>) is batched by input: a batch
/// holds the windows of its inputs, so that the loss is that of their combined logits.</summary>
public sealed class FineTuningTask<TExample> : ITrainingTask
{
    private readonly TaskModel<TExample> task;
    private readonly IReadOnlyList<Feature> train;
    private readonly IReadOnlyList<TExample> dev;
    // What a batch is made of: feature indices per training unit (an input's windows, or one feature).
    private readonly int[][] units;
    private readonly int[] lengths;
    private readonly int batchSize;
    private readonly long seed;
    private readonly bool groupByLength;

    public FineTuningTask(TaskModel<TExample> task, IReadOnlyList<Feature> train, IReadOnlyList<TExample> dev, int batchSize, long seed, bool groupByLength = true)
    {
        if (batchSize < 1) throw new BertSharpException($"batchSize must be at least 1, got {batchSize}") { Parameters = ["batchSize"] };
        if (train.Count == 0) throw new BertSharpException("the training data has no examples");
        this.task = task;
        this.train = train;
        this.dev = dev;
        this.batchSize = batchSize;
        this.seed = seed;
        this.groupByLength = groupByLength && task.GroupsByLength;
        units = task.CombinesWindows ? Units(train) : Enumerable.Range(0, train.Count).Select(i => new[] { i }).ToArray();
        lengths = units.Select(u => u.Max(i => train[i].Length)).ToArray();
    }

    /// <summary>The features of each input, in order (an input's windows are consecutive).</summary>
    static int[][] Units(IReadOnlyList<Feature> features)
    {
        var units = new List<int[]>();
        int start = 0;
        foreach (int count in TextWindows.WindowsPerInput(features))
        {
            units.Add(Enumerable.Range(start, count).ToArray());
            start += count;
        }
        return units.ToArray();
    }

    public TaskModel<TExample> TaskModel => task;
    public BertWithHead Model => task.Model;
    public int BatchesPerEpoch => (units.Length + batchSize - 1) / batchSize;
    public string SelectionMetric => task.SelectionMetric;
    public IReadOnlyCollection<string> Metrics => task.EvaluationMetrics;

    /// <summary>The score of the last evaluation (with per-example predictions).</summary>
    public DatasetScore? LastScore { get; private set; }

    public IEnumerable<Batch> TrainBatches(int epoch, int start)
    {
        var batches = Batching.TrainOrder(lengths, batchSize, seed, epoch, groupByLength, task.OrderStream);
        for (int b = start; b < batches.Length; b++)
            yield return task.CombinesWindows
                ? Batching.CollateInputs(batches[b].Select(u => (IReadOnlyList<Feature>)units[u].Select(i => train[i]).ToList()).ToList(), task.Tokenizer.PadId, task.LabelKind, epoch, b, task.Device)
                : Batching.Collate(batches[b].Select(u => train[units[u][0]]).ToList(), task.Tokenizer.PadId, task.LabelKind, epoch, b, task.Device);
    }

    public BatchLoss Loss(Batch batch) => task.Loss(batch);

    public IReadOnlyDictionary<string, double> Evaluate()
    {
        LastScore = task.EvaluateDev(dev);
        return LastScore.Metrics;
    }

    public void SaveModel(string dir) => task.Save(dir);
}
