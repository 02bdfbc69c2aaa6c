using System.Diagnostics;
using BertSharp.Tasks;

namespace BertSharp.Inference;

/// <summary>How an <see cref="InferenceQueue"/> groups concurrent requests into batches.</summary>
public sealed record InferenceQueueOptions
{
    /// <summary>Inputs per model call, at most (a single larger request runs alone, in the model's own batches).</summary>
    public int MaxBatchSize { get; init; } = 32;
    /// <summary>Tokens per model call, at most (inputs × their token counts, [CLS]/[SEP] included).</summary>
    public int MaxBatchTokens { get; init; } = 16384;
    /// <summary>How long the first request of a batch waits for others to join it.</summary>
    public TimeSpan MaxWait { get; init; } = TimeSpan.FromMilliseconds(2);
    /// <summary>Inputs waiting at most; a request that would exceed it is refused (<see cref="QueueFullException"/>).</summary>
    public int MaxQueuedInputs { get; init; } = 4096;
}

/// <summary>The queue is full: the caller should retry later (HTTP 429).</summary>
public sealed class QueueFullException(string message) : BertSharpException(message);

/// <summary>What an <see cref="InferenceQueue"/> has done so far (for /metrics).</summary>
public sealed record InferenceQueueStats(long Requests, long Inputs, long Batches, long Failures, int QueuedInputs, IReadOnlyDictionary<int, long> BatchSizes);

/// <summary>
/// Dynamic batching for many callers of one model: concurrent requests are queued and run together on one worker
/// thread (a <see cref="TaskModel"/> is not thread-safe), up to <see cref="InferenceQueueOptions.MaxBatchSize"/> inputs
/// and <see cref="InferenceQueueOptions.MaxBatchTokens"/> tokens, the first waiting at most
/// <see cref="InferenceQueueOptions.MaxWait"/> for company; inside a call the model sorts its inputs by length. Each
/// caller gets its own predictions, in its own order. <see cref="DisposeAsync"/> stops taking requests, finishes the
/// queued ones, then returns.
/// </summary>
public sealed class InferenceQueue : IAsyncDisposable
{
    sealed record Request(IReadOnlyList<PredictInput> Inputs, int Tokens, TaskCompletionSource<IReadOnlyList<TaskPrediction>> Done);

    readonly TaskModel model;
    readonly InferenceQueueOptions options;
    readonly Queue<Request> queue = new();
    readonly object gate = new();
    readonly Thread worker;
    readonly Dictionary<int, long> batchSizes = new();
    bool stopping;
    int queuedInputs;
    long requests, inputs, batches, failures;

    public InferenceQueue(TaskModel model, InferenceQueueOptions? options = null)
    {
        this.model = model;
        this.options = options ?? new();
        if (this.options.MaxBatchSize < 1) throw new BertSharpException($"maxBatchSize must be at least 1, got {this.options.MaxBatchSize}") { Parameters = ["maxBatchSize"] };
        if (this.options.MaxBatchTokens < model.MaxSeqLength)
            throw new BertSharpException($"maxBatchTokens {this.options.MaxBatchTokens} is below one input of the model's length ({model.MaxSeqLength})") { Parameters = ["maxBatchTokens"] };
        worker = new Thread(Work) { IsBackground = true, Name = "BertSharp inference" };
        worker.Start();
    }

    public TaskModel Model => model;

    /// <summary>Predictions for <paramref name="inputs"/> (in their order), run with whatever other requests are
    /// waiting. <paramref name="tokens"/>: their token count, for the token budget (default: each at the model's length).</summary>
    public Task<IReadOnlyList<TaskPrediction>> PredictAsync(IReadOnlyList<PredictInput> inputs, int? tokens = null)
    {
        if (inputs.Count == 0) return Task.FromResult<IReadOnlyList<TaskPrediction>>([]);
        var request = new Request(inputs, tokens ?? inputs.Count * model.MaxSeqLength,
            new TaskCompletionSource<IReadOnlyList<TaskPrediction>>(TaskCreationOptions.RunContinuationsAsynchronously));
        lock (gate)
        {
            if (stopping) throw new QueueFullException("the server is shutting down");
            if (queuedInputs > 0 && queuedInputs + inputs.Count > options.MaxQueuedInputs)
                throw new QueueFullException($"the queue is full ({queuedInputs} inputs waiting, at most {options.MaxQueuedInputs}); retry later");
            queue.Enqueue(request);
            queuedInputs += inputs.Count;
            Monitor.PulseAll(gate);
        }
        return request.Done.Task;
    }

    public InferenceQueueStats Stats
    {
        get
        {
            lock (gate) return new InferenceQueueStats(requests, inputs, batches, failures, queuedInputs, new Dictionary<int, long>(batchSizes));
        }
    }

    void Work()
    {
        while (true)
        {
            var batch = new List<Request>();
            lock (gate)
            {
                while (queue.Count == 0 && !stopping) Monitor.Wait(gate);
                if (queue.Count == 0) return;   // stopping, and nothing left
                batch.Add(queue.Dequeue());
                int count = batch[0].Inputs.Count, tokens = batch[0].Tokens;
                var waited = Stopwatch.StartNew();
                while (count < options.MaxBatchSize)
                {
                    if (queue.TryPeek(out var next))
                    {
                        if (count + next.Inputs.Count > options.MaxBatchSize || tokens + next.Tokens > options.MaxBatchTokens) break;
                        batch.Add(queue.Dequeue());
                        count += next.Inputs.Count;
                        tokens += next.Tokens;
                        continue;
                    }
                    var left = options.MaxWait - waited.Elapsed;
                    if (left <= TimeSpan.Zero || stopping) break;
                    Monitor.Wait(gate, left);
                }
                queuedInputs -= count;   // a batch being gathered still counts as waiting, for the bound and the gauge
            }
            Run(batch);
        }
    }

    void Run(List<Request> batch)
    {
        var all = batch.SelectMany(r => r.Inputs).ToList();
        try
        {
            var predictions = model.Predict(all);
            int at = 0;
            foreach (var r in batch)
            {
                r.Done.SetResult(predictions.Skip(at).Take(r.Inputs.Count).ToList());
                at += r.Inputs.Count;
            }
            lock (gate)
            {
                requests += batch.Count;
                inputs += all.Count;
                batches++;
                batchSizes[all.Count] = batchSizes.GetValueOrDefault(all.Count) + 1;
            }
        }
        catch (Exception e)
        {
            lock (gate) failures += batch.Count;
            foreach (var r in batch) r.Done.TrySetException(e);
        }
    }

    /// <summary>Stops taking requests; the queued ones still run. Returns when they have.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (gate)
        {
            stopping = true;
            Monitor.PulseAll(gate);
        }
        await Task.Run(worker.Join);
    }
}
