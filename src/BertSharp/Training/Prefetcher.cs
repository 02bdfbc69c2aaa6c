using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace BertSharp.Training;

/// <summary>
/// Runs a batch source on a background thread, a few batches ahead of the consumer, so masking and collation
/// overlap with the training step. The order is the source's own, so training stays deterministic. Disposing
/// stops the producer and disposes the batches it made that were never consumed.
/// </summary>
internal sealed class Prefetcher<T> : IDisposable where T : IDisposable
{
    private readonly BlockingCollection<T> queue;
    private readonly CancellationTokenSource stop = new();
    private readonly Task producer;
    private Exception? failure;

    public Prefetcher(IEnumerable<T> source, int depth = 2)
    {
        queue = new BlockingCollection<T>(depth);
        producer = Task.Factory.StartNew(() =>
        {
            try
            {
                foreach (var item in source)
                {
                    try { queue.Add(item, stop.Token); }
                    catch (OperationCanceledException) { item.Dispose(); return; }
                }
            }
            catch (Exception e) { failure = e; }
            finally { queue.CompleteAdding(); }
        }, TaskCreationOptions.LongRunning);
    }

    /// <summary>The next item; false when the source is exhausted. A producer error is rethrown here.</summary>
    public bool TryTake(out T item)
    {
        if (queue.TryTake(out item!, Timeout.Infinite)) return true;
        if (failure != null) ExceptionDispatchInfo.Capture(failure).Throw();   // with the producer's stack trace
        return false;
    }

    public void Dispose()
    {
        stop.Cancel();
        while (queue.TryTake(out var left)) left.Dispose();
        try { producer.Wait(); } catch (AggregateException) { }
        while (queue.TryTake(out var left)) left.Dispose();
        queue.Dispose();
        stop.Dispose();
    }
}
