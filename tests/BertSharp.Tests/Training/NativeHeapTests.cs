using BertSharp.Runtime;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace BertSharp.Tests.Training;

[Collection(SerialCollection.Name)]   // counts the managed heap's committed bytes: no other test allocating meanwhile
public class NativeHeapTests
{
    [Fact]
    public void ReleaseAllDecommitsWhatTheManagedHeapHoldsFree()
    {
        var heap = new NativeHeap();
        FillAndDrop(64 << 20);
        GC.Collect();   // an ordinary full collection: the dead arrays are gone, their memory stays committed
        long before = GC.GetGCMemoryInfo().TotalCommittedBytes;
        heap.ReleaseAll();
        long after = GC.GetGCMemoryInfo().TotalCommittedBytes;
        Assert.True(before - after > 32 << 20, $"committed {before >> 20} -> {after >> 20} MiB");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void FillAndDrop(int bytes)
    {
        var keep = new List<byte[]>();
        for (int n = 0; n < bytes; n += 8000) keep.Add(new byte[8000]);   // small objects, in the ordinary heap
        GC.Collect();   // survive into gen 2, as data loading's objects do
        GC.KeepAlive(keep);
    }

    [GlibcFact]
    public void MallocTrimBindsOnGlibc()
    {
        // CI and the development machine run Linux with glibc: the P/Invoke must bind there. After freeing a large
        // heap block (below the 32 MB upper mmap threshold, so glibc keeps it) there are pages to release.
        var ones = Enumerable.Repeat((byte)1, 256 * 1024).ToArray();
        var blocks = Enumerable.Range(0, 64).Select(_ => Marshal.AllocHGlobal(ones.Length)).ToList();   // malloc
        foreach (var b in blocks) Marshal.Copy(ones, 0, b, ones.Length);   // touch the pages
        foreach (var b in blocks) Marshal.FreeHGlobal(b);
        Assert.True(NativeHeap.Trim());
    }

    [Fact]
    public void CollectAfterStepRunsTheFinalizersOfDeadObjectsAtMostOncePerInterval()
    {
        var now = TimeSpan.FromSeconds(10);
        var heap = new NativeHeap(() => now);
        var finalized = new StrongBox<int>(0);
        LeaveToTheGc(finalized);
        // A young-generation collection finds the object unless a collection elsewhere in the process promoted it
        // meanwhile; a few tries, each of which must have waited for the slow finalizer when it collected it.
        for (int attempt = 0; attempt < 3 && Volatile.Read(ref finalized.Value) == 0; attempt++, now += NativeHeap.MinCollectInterval)
            Assert.True(heap.CollectAfterStep());
        Assert.Equal(1, Volatile.Read(ref finalized.Value));   // collected and finalized before it returned
        Assert.True(heap.CollectAfterStep());   // a whole interval after the last one
        now += NativeHeap.MinCollectInterval / 2;
        Assert.False(heap.CollectAfterStep());   // within the interval since the last one: skipped
    }

    [GlibcFact]
    public void TrimIfGrownMeasuresGrowthFromTheLevelTheLastTrimBroughtDown()
    {
        // A trim gives back the pages the steps free; the steps after it fault their working set back in, over more
        // than one step. That regrowth is not growth: a heap that returns to its working set is not trimmed again.
        var now = TimeSpan.Zero;
        long resident = 0;
        var heap = new NativeHeap(() => now, () => resident);
        int Steps(int n, Func<int, long> rss)
        {
            int trims = 0;
            for (int i = 0; i < n; i++) { now += TimeSpan.FromMilliseconds(150); resident = rss(i); if (heap.TrimIfGrown()) trims++; }
            return trims;
        }
        long workingSet = 1000L << 20;
        Assert.Equal(0, Steps(1, _ => workingSet / 2));                                   // the first step: the baseline
        Assert.Equal(1, Steps(NativeHeap.MinStepsBetween, _ => workingSet));              // grown: trimmed once
        resident = workingSet * 4 / 5;                                                   // what the trim left
        Assert.Equal(0, Steps(500, i => Math.Min(workingSet, resident + i * (1L << 20))));   // faulted back in gradually
        Assert.Equal(1, Steps(1, _ => workingSet * 11 / 10));                             // grown beyond it
        Assert.Equal(0, Steps(NativeHeap.MinStepsBetween - 1, _ => workingSet * 13 / 10));   // grown again, but too soon
        Assert.Equal(1, Steps(1, _ => workingSet * 13 / 10));
        Assert.Equal(0, Steps(500, _ => workingSet * 13 / 10));                           // the new level
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    static void LeaveToTheGc(StrongBox<int> finalized) => _ = new Finalizable(finalized);

    sealed class Finalizable(StrongBox<int> finalized)
    {
        ~Finalizable()
        {
            Thread.Sleep(100);   // a slow finalizer: done only if CollectAfterStep waited for it
            Interlocked.Increment(ref finalized.Value);
        }
    }
}
