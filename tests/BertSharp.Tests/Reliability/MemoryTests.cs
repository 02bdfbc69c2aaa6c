using TorchSharp;

namespace BertSharp.Tests.Reliability;

/// <summary>Training steps, evaluations and checkpoints leave no tensor handles behind. The long-run memory bench
/// (bench/MemoryBench) found TorchSharp's optimizer.zero_grad() leaving one grad handle per parameter per step,
/// and each checkpoint leaving four per parameter (optimizer.save_state_dict and the state-dict copies), to the
/// garbage collector.</summary>
[Collection(SerialCollection.Name)] // exact loss comparisons: libtorch's generator is process-global
public class MemoryTests
{
    [Fact]
    public void Training_steps_evaluations_and_checkpoints_leave_no_live_tensors_behind()
    {
        var dir = TestPaths.TempDir("memory");
        var corpus = TinyPretraining.Corpus(dir);
        var t = TinyPretraining.Make(corpus, Path.Combine(dir, "run"), resume: false, maxSteps: 9, evalEvery: 4);
        var live = new Dictionary<long, long>();
        // The Trainer runs on this thread, so the per-thread count is the Trainer's.
        t.OnStep = p => live[p.Step] = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        t.Train();
        Assert.Equal(9, live.Count);
        // Every step must change this thread's count by the same amount, whether or not it evaluated and saved
        // a checkpoint, and that amount must not be positive: 0 when batches are made on this thread, minus the
        // batch's tensors when a background thread makes them (the count is per thread) and this one disposes them.
        var changes = Enumerable.Range(2, 8).Select(s => live[s] - live[s - 1]).Distinct().ToList();
        Assert.True(changes.Count == 1 && changes[0] <= 0, "live tensors after each step: " + string.Join(", ", live.Select(kv => $"{kv.Key}: {kv.Value}")));
    }
}
