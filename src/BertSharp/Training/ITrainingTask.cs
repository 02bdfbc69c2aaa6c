using BertSharp.Modeling;
using static TorchSharp.torch;

namespace BertSharp.Training;

/// <summary>A batch of model inputs (tensors by name) and where it came from in the data order.</summary>
public sealed class Batch : IDisposable
{
    public required Dictionary<string, Tensor> Tensors { get; init; }
    public required int Sequences { get; init; }
    public int Epoch { get; init; }
    public int Index { get; init; }
    public Tensor this[string name] => Tensors[name];
    public void Dispose() { foreach (var t in Tensors.Values) t.Dispose(); }
}

/// <summary>The loss of one batch: the scalar to back-propagate and named parts to log (all scalars).</summary>
public sealed record BatchLoss(Tensor Loss, IReadOnlyDictionary<string, Tensor> Parts);

/// <summary>
/// What the Trainer knows of a task: its model, its batches in a deterministic order, its loss, and its
/// evaluation. Pre-training and every fine-tuning task implement this.
/// </summary>
public interface ITrainingTask
{
    BertWithHead Model { get; }

    /// <summary>Number of batches in one pass over the training data.</summary>
    int BatchesPerEpoch { get; }

    /// <summary>Training batches of <paramref name="epoch"/> starting at batch <paramref name="start"/>. The same
    /// (seed, epoch, start) always gives the same batches: that is what makes --resume exact.</summary>
    IEnumerable<Batch> TrainBatches(int epoch, int start);

    BatchLoss Loss(Batch batch);

    /// <summary>Evaluates on the validation data; the model is in eval mode and gradients are off.
    /// Keys are metric names without a prefix (e.g. "loss", "mlm_accuracy").</summary>
    IReadOnlyDictionary<string, double> Evaluate();

    /// <summary>The names of the metrics <see cref="Evaluate"/> reports: what a run may pick its best model by.</summary>
    IReadOnlyCollection<string> Metrics { get; }

    /// <summary>The metric that picks the best model unless the run names another (its direction:
    /// <see cref="MetricSelection.HigherIsBetter"/>).</summary>
    string SelectionMetric { get; }

    /// <summary>Writes a complete model folder (weights, config, tokenizer files) to <paramref name="dir"/>.</summary>
    void SaveModel(string dir);
}
