using System.Runtime.ExceptionServices;
using BertSharp.Modeling;
using BertSharp.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Training;

/// <summary>
/// Data parallelism inside one process on the CPU: a training batch is cut into shards of whole sequences, and each
/// shard's forward and backward run at once on their own thread with one libtorch thread each, instead of every op
/// of the whole batch split over libtorch's threads.
/// </summary>
/// <remarks>
/// The step is hundreds of ops, many of them small or memory-bound, and each op split over threads waits for its
/// slowest thread (docs/PERFORMANCE.md has the measurements).
/// The result is the same loss and gradients as the unsharded batch, to rounding: the caller normalises every
/// shard's loss by the whole batch's count. Each shard's gradients come from autograd.grad on its own thread and are
/// summed in shard order; the loss returned carries them through a zero-valued surrogate term (as
/// <see cref="FusedLinearCrossEntropy"/> does), so loss.backward() and gradient accumulation work as before. Each
/// shard's dropout masks come from its own seed, drawn in order from torch's generator before the shards start, so a
/// run is reproducible for a given thread count (as it already was: libtorch's reductions depend on it too).
/// </remarks>
internal static class DataParallel
{
    /// <summary>Fewest sequences a shard gets: below this the parameter-sized work per shard (its gradients, their sum,
    /// the surrogate) is not paid back by the shorter step.</summary>
    public const int MinSequencesPerShard = 8;

    /// <summary>For tests: the shards to cut into on this thread whatever the thread count (null: decide as below).</summary>
    [ThreadStatic] internal static int? ForcedShards;

    /// <summary>How many shards to cut a batch of <paramref name="sequences"/> into: one per libtorch thread on the CPU
    /// when gradients are being recorded and the model's kernels draw the dropout masks (so that each shard's are reproducible).</summary>
    internal static int Shards(long sequences, Device device, BertKernels kernels)
    {
        if (ForcedShards is int forced) return (int)Math.Clamp(forced, 1, Math.Max(1, sequences));
        if (device.type != DeviceType.CPU || !is_grad_enabled() || !kernels.DrawsDropoutMasksOn(device.type)) return 1;
        return (int)Math.Clamp(Math.Min(get_num_threads(), sequences / MinSequencesPerShard), 1, int.MaxValue);
    }

    /// <summary>Rows [start, end) of shard <paramref name="shard"/> of <paramref name="shards"/> over <paramref name="rows"/>.</summary>
    internal static (long Start, long End) Range(long rows, int shards, int shard) => KernelThreads.Range(rows, shards, shard);

    /// <summary>
    /// Runs <paramref name="shard"/>(0 … shards − 1) at once, each on a worker thread with one libtorch thread. Each
    /// returns scalar float32 tensors: the loss to differentiate first, then parts to report. Returns the sums over the
    /// shards: the first with the shards' gradients of <paramref name="parameters"/> attached (backward() on it fills
    /// their .grad as backward() on an unsharded loss would), the others without gradients.
    /// </summary>
    internal static Tensor[] Run(IList<Tensor> parameters, int shards, Func<int, Tensor[]> shard)
    {
        var seeds = new ulong[shards];
        for (int k = 0; k < shards; k++) seeds[k] = FastDropout.NextSeed();   // in order, on the calling thread
        var values = new Tensor[shards][];
        var grads = new IList<Tensor>[shards];
        Workers.Run(shards, k =>
        {
            using var scope = NewDisposeScope();
            FastDropout.ShardSeed = seeds[k];
            try
            {
                var parts = shard(k);
                var g = autograd.grad(new[] { parts[0] }, parameters, allow_unused: true);
                // A parameter the loss does not reach (the NSP head under the masked-LM objective alone) has an
                // undefined gradient, a tensor without a handle: no gradient, as backward() leaves its .grad.
                grads[k] = g.Select(t => t is null || t.IsInvalid ? null : t.MoveToOuterDisposeScope()).ToList()!;
                values[k] = parts.Select(t => t.detach().MoveToOuterDisposeScope()).ToArray();
            }
            finally { FastDropout.ShardSeed = null; }
        });
        try
        {
            var sums = new Tensor[values[0].Length];
            for (int i = 0; i < sums.Length; i++)
            {
                sums[i] = values[0][i].clone();
                for (int k = 1; k < shards; k++) sums[i].PlusInPlace(values[k][i]);
            }
            // Zero-valued term whose gradient is the summed shard gradients. The sum starts from a copy: autograd.grad's
            // results may share storage with each other, and adding into one in place broke the surrogate's backward.
            Tensor? surrogate = null;
            for (int p = 0; p < parameters.Count; p++)
            {
                Tensor? g = null;
                for (int k = 0; k < shards; k++)
                    if (grads[k][p] is { } gk) g = g is null ? gk.clone() : g.PlusInPlace(gk);
                if (g is null) continue;
                var term = parameters[p].mul(g).sum();
                surrogate = surrogate is null ? term : surrogate.PlusInPlace(term);
            }
            if (surrogate is not null) sums[0] = sums[0].Plus(surrogate) - surrogate.detach();
            return sums;
        }
        finally
        {
            foreach (var v in values) if (v != null) foreach (var t in v) t.Dispose();
            foreach (var g in grads) if (g != null) foreach (var t in g) t?.Dispose();
        }
    }

    /// <summary>Shard 0 on the calling thread, the others on dedicated threads, each set to one libtorch thread
    /// (libtorch's thread count is per thread with OpenMP, but set_num_threads also records the count that threads
    /// starting later take: restored after). The calling thread's shard allocates from glibc's main heap, which
    /// a training <see cref="NativeHeap"/> keeps; other threads' heaps are unmapped when empty and faulted in again.</summary>
    private static class Workers
    {
        private static readonly object Gate = new();
        private static readonly List<Worker> Pool = new();

        public static void Run(int jobs, Action<int> job)
        {
            lock (Gate)   // one sharded step at a time in the process
            {
                while (Pool.Count < jobs - 1) Pool.Add(new Worker());
                for (int k = 1; k < jobs; k++) { int shard = k; Pool[k - 1].Start(() => job(shard)); }
                ExceptionDispatchInfo? error = null;
                int threads = get_num_threads();
                set_num_threads(1);
                try { job(0); }
                catch (Exception e) { error = ExceptionDispatchInfo.Capture(e); }
                finally { set_num_threads(threads); }
                for (int k = 1; k < jobs; k++) { var e = Pool[k - 1].Wait(); error ??= e; }   // every one waited for, failed or not
                error?.Throw();
            }
        }
    }

    private sealed class Worker
    {
        private readonly SemaphoreSlim go = new(0), done = new(0);
        private Action? job;
        private ExceptionDispatchInfo? error;

        public Worker()
        {
            int callerThreads = get_num_threads();
            var ready = new ManualResetEventSlim();
            var thread = new Thread(() =>
            {
                get_num_threads();      // libtorch's lazy per-thread initialisation first, or it would undo the next line
                set_num_threads(1);
                ready.Set();
                while (true)
                {
                    go.Wait();
                    try { job!(); }
                    catch (Exception e) { error = ExceptionDispatchInfo.Capture(e); }
                    done.Release();
                }
            }) { IsBackground = true, Name = "BertSharp data-parallel shard" };
            thread.Start();
            ready.Wait();
            set_num_threads(callerThreads);
        }

        public void Start(Action work) { job = work; error = null; go.Release(); }

        public ExceptionDispatchInfo? Wait() { done.Wait(); job = null; return error; }
    }
}
